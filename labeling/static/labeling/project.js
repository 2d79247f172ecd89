"use strict";
/* The project page: counts, the task table (the data manager's list, through /api/tasks/), who is
   here, the activity feed, import and export. Reads go through the API once; after that the
   project's socket (realtime.js) keeps the page current, and nothing is polled except the status
   of an import or export this page started while the socket is down. */
(() => {
  const { api, rows, h, run, flash, showError, clearError } = Admin;
  const { config, remember, personName, mediaUrl, isImageUrl, clock, holdersText, Locks, showLiveState } = LabelingPages;
  const projectId = config.project.id;
  const PAGE_SIZE = 30;
  const FEED_LIMIT = 60;
  const HISTORY_ON_OPEN = 25;
  // While the socket is down, how often a running job's status is read from the API; while it is up,
  // how long the page waits for the job's next event before reading the status once itself.
  const JOB_POLL_MS = 2000;
  const JOB_EVENT_PATIENCE_MS = 10000;
  const TERMINAL = new Set(["completed", "failed"]);

  const stream = Realtime.projectStream(config.socketPath);
  const locks = new Locks(config.locks);
  const presence = new Map(); // user id -> {user, task}
  const taskBody = document.getElementById("task-rows");
  let tasksPage = 1;
  let tasksTotal = 0;

  // --- counts -----------------------------------------------------------------------------------

  const refreshCounts = Admin.debounce(async () => {
    const project = await api("GET", `/projects/${projectId}`).catch(() => null);
    if (!project) return;
    for (const cell of document.querySelectorAll("[data-count]")) {
      cell.textContent = String(project[cell.dataset.count] ?? 0);
    }
  }, 300);

  // --- the task table ---------------------------------------------------------------------------

  function preview(data) {
    const values = Object.values(data || {}).flat();
    const image = values.find(isImageUrl);
    if (image) return h("img", { class: "thumb", src: mediaUrl(image), alt: `Task image`, loading: "lazy" });
    const text = JSON.stringify(data || {});
    return h("code", { class: "preview", title: text }, text.length > 90 ? `${text.slice(0, 90)}…` : text);
  }

  function lockCell(taskId) {
    const holders = locks.holders(taskId);
    if (!holders.length) return [h("span", { class: "muted" }, "—")];
    return holders.map((holder) => h("span", {
      class: "badge lock", title: new Date(holder.until).toLocaleString(),
      dataset: { testid: "lock-badge", userId: holder.user.id },
    }, `${personName(holder.user)} · until ${clock(holder.until)}`));
  }

  function labeledCell(isLabeled) {
    return isLabeled ? h("span", { class: "badge done" }, "Labeled") : h("span", { class: "muted" }, "No");
  }

  function taskRow(task) {
    return h("tr", { dataset: { testid: "task-row", taskId: task.id } },
      h("td", {}, String(task.id)),
      h("td", { class: "preview-cell" }, preview(task.data)),
      h("td", { class: "number", dataset: { testid: "task-annotations" } }, String(task.total_annotations)),
      h("td", { class: "number", dataset: { testid: "task-cancelled" } }, String(task.cancelled_annotations)),
      h("td", { dataset: { testid: "task-labeled" } }, labeledCell(task.is_labeled)),
      h("td", { dataset: { testid: "task-lock" } }, lockCell(task.id)),
      h("td", { class: "actions" }, config.can.label
        ? h("a", { class: "button small secondary", href: `${config.orgBase}projects/${projectId}/label?task=${task.id}` }, "Open")
        : null));
  }

  // No table for a role without `tasks.view`: nothing to update then.
  const rowOf = (taskId) => (taskBody ? taskBody.querySelector(`tr[data-task-id="${taskId}"]`) : null);

  function showTaskCounts(taskId, counts) {
    const row = rowOf(taskId);
    if (!row || !counts) return;
    row.querySelector("[data-testid=task-annotations]").textContent = String(counts.total_annotations);
    row.querySelector("[data-testid=task-cancelled]").textContent = String(counts.cancelled_annotations);
    row.querySelector("[data-testid=task-labeled]").replaceChildren(labeledCell(counts.is_labeled));
  }

  function showLock(taskId) {
    const row = rowOf(taskId);
    if (row) row.querySelector("[data-testid=task-lock]").replaceChildren(...lockCell(taskId));
  }

  function showAllLocks() {
    if (!taskBody) return;
    for (const row of taskBody.querySelectorAll("tr[data-task-id]")) showLock(Number(row.dataset.taskId));
  }

  // Tasks others import or delete: the table is read again, once for a burst of events.
  const refreshTasks = Admin.debounce(() => loadTasks(), 500);

  async function loadTasks() {
    if (!config.can.tasks) return;
    let payload;
    try {
      payload = await api("GET", "/tasks/", { params: { project: projectId, page: tasksPage, page_size: PAGE_SIZE } });
    } catch (error) {
      if (error.status === 404 && tasksPage > 1) { tasksPage = 1; return loadTasks(); }  // the page emptied
      showError("tasks-error", error);
      return;
    }
    clearError("tasks-error");
    tasksTotal = payload.total;
    taskBody.replaceChildren(...payload.tasks.map(taskRow));
    if (!payload.tasks.length) {
      taskBody.append(h("tr", { class: "empty" }, h("td", { colspan: 7 }, config.can.import
        ? "No tasks yet: import some." : "No tasks yet.")));
    }
    const first = tasksTotal ? (tasksPage - 1) * PAGE_SIZE + 1 : 0;
    const last = Math.min(tasksTotal, tasksPage * PAGE_SIZE);
    document.getElementById("tasks-range").textContent = `${first}–${last} of ${tasksTotal}`;
    document.getElementById("tasks-previous").disabled = tasksPage <= 1;
    document.getElementById("tasks-next").disabled = last >= tasksTotal;
  }

  if (config.can.tasks) {
    document.getElementById("tasks-previous").addEventListener("click", () => { tasksPage -= 1; loadTasks(); });
    document.getElementById("tasks-next").addEventListener("click", () => { tasksPage += 1; loadTasks(); });
  }

  // --- who is here ------------------------------------------------------------------------------

  function showPresence() {
    const list = document.getElementById("presence");
    if (!stream.connected) {
      list.replaceChildren(h("li", { class: "muted" }, "Shown while live updates are on."));
      return;
    }
    const people = [...presence.values()].sort((a, b) => personName(a.user).localeCompare(personName(b.user)));
    list.replaceChildren(...people.map(({ user, task }) => h("li", {
      dataset: { testid: "presence-item", userId: user.id },
    }, h("strong", {}, personName(user)), h("span", { class: "muted" }, task ? ` on task ${task}` : " here"))));
    if (!people.length) list.append(h("li", { class: "muted" }, "Nobody else right now."));
  }

  // --- activity ---------------------------------------------------------------------------------

  // History actions (labeling.models.AnnotationHistory.Action), each followed by "task N".
  const HISTORY_TEXT = {
    submitted: "submitted an annotation on", updated: "updated an annotation on", skipped: "skipped",
    accepted: "accepted an annotation on", rejected: "rejected an annotation on",
    fixed_and_accepted: "fixed and accepted an annotation on", deleted_review: "deleted a review on",
    imported: "imported an annotation on", prediction: "added a prediction on",
    propagated_annotation: "propagated an annotation on",
  };
  const UNLOCK_TEXT = {
    submitted: "submitted", skipped: "skipped", closed: "closed", disconnected: "disconnected", released: "released",
  };

  const feed = document.getElementById("activity");

  /* One line of the feed: "14:05 Ada submitted an annotation on task 12" (`who` null: no one named). */
  function feedItem({ when, who, text, kind }, { prepend = true } = {}) {
    const item = h("li", { dataset: { testid: "activity-item", kind } },
      h("time", { datetime: when, class: "muted" }, clock(when)), " ",
      who === null ? null : h("strong", {}, personName(who)), who === null ? text : ` ${text}`);
    feed.querySelector(".empty")?.remove();
    if (prepend) feed.prepend(item); else feed.append(item);
    while (feed.children.length > FEED_LIMIT) feed.lastElementChild.remove();
  }

  async function loadHistory() {
    const payload = await api("GET", `/projects/${projectId}/annotation-history`,
      { params: { page_size: HISTORY_ON_OPEN } }).catch(() => null);
    const entries = rows(payload);
    for (const entry of entries) {
      feedItem({ when: entry.created_at, who: entry.created_by, kind: entry.action,
        text: `${HISTORY_TEXT[entry.action] || `${entry.action} on`} task ${entry.task_id}` }, { prepend: false });
    }
    if (!feed.children.length) feed.append(h("li", { class: "muted empty" }, "No activity yet."));
  }

  const now = () => new Date().toISOString();

  // --- jobs: import and export progress ---------------------------------------------------------

  /* A progress bar: set(percent or null for "working", text). */
  function progressBar(id) {
    const box = document.getElementById(id);
    const bar = box.querySelector(".bar");
    const text = box.querySelector(".progress-text");
    return {
      set(percent, label) {
        box.hidden = false;
        box.classList.toggle("indeterminate", percent === null || percent === undefined);
        const value = Math.max(0, Math.min(100, Number(percent) || 0));
        bar.style.width = `${percent === null || percent === undefined ? 100 : value}%`;
        box.setAttribute("aria-valuenow", String(Math.round(value)));
        text.textContent = label;
      },
      hide() { box.hidden = true; },
    };
  }

  const jobWatchers = new Map(); // "export:12" -> (event) => void
  const finishedJobs = new Map(); // terminal events that came before anyone watched (inline jobs are fast)

  /* Follow a job to its end: its job.progress events move `bar`; when the socket is down (or quiet
     for too long) `readStatus()` asks the API. Resolves with the final readStatus(). */
  function watchJob({ kind, id, bar, readStatus, describe }) {
    const key = `${kind}:${id}`;
    return new Promise((resolve) => {
      let lastNews = Date.now();
      let done = false;
      const finish = async () => {
        if (done) return;
        done = true;
        clearInterval(timer);
        jobWatchers.delete(key);
        resolve(await readStatus().catch(() => ({ status: "failed" })));
      };
      jobWatchers.set(key, (event) => {
        lastNews = Date.now();
        bar.set(event.percent, describe(event));
        if (TERMINAL.has(event.status)) finish();
      });
      const timer = setInterval(async () => {
        if (stream.connected && Date.now() - lastNews < JOB_EVENT_PATIENCE_MS) return;
        lastNews = Date.now();
        const state = await readStatus().catch(() => null);
        if (!state) return;
        if (TERMINAL.has(state.status)) finish();
        else bar.set(null, describe(state));
      }, JOB_POLL_MS);
      if (finishedJobs.has(key)) { finishedJobs.delete(key); finish(); }
    });
  }

  function onJobProgress(event) {
    const key = `${event.job.kind}:${event.job.id}`;
    const watcher = jobWatchers.get(key);
    if (watcher) watcher(event);
    else if (TERMINAL.has(event.status)) {
      finishedJobs.set(key, event);
      if (finishedJobs.size > 50) finishedJobs.delete(finishedJobs.keys().next().value);
    }
    if (event.job.kind === "import" && event.status === "completed") {
      feedItem({ when: now(), who: null, kind: "import", text: `Import ${event.job.id} finished: ${event.done} tasks` });
      refreshCounts();
      loadTasks();
    }
  }

  const counted = (event) => (event.total ? `${event.done ?? 0} of ${event.total}` : `${event.done ?? 0}`);
  const statusText = (status) => String(status || "").replace("_", " ");

  // Import: files (multipart, with upload progress) or a JSON list of tasks.
  function uploadFiles(files, bar) {
    return new Promise((resolve, reject) => {
      const form = new FormData();
      for (const file of files) form.append("file", file, file.name);
      const request = new XMLHttpRequest();
      request.open("POST", `${config.apiBase}/projects/${projectId}/import`);
      request.setRequestHeader("X-CSRFToken", document.querySelector("meta[name=csrf-token]").content);
      request.setRequestHeader("Accept", "application/json");
      request.upload.addEventListener("progress", (event) => {
        if (event.lengthComputable) bar.set(100 * event.loaded / event.total, `Uploading… ${Math.round(100 * event.loaded / event.total)}%`);
      });
      request.upload.addEventListener("load", () => bar.set(null, "Processing the files…"));
      request.addEventListener("load", () => {
        let payload = null;
        try { payload = JSON.parse(request.responseText); } catch (_) { payload = { detail: request.responseText.slice(0, 300) }; }
        if (request.status >= 200 && request.status < 300) resolve(payload);
        else reject(new Admin.ApiError(request.status, payload));
      });
      request.addEventListener("error", () => reject(new Error("The upload failed: the server could not be reached.")));
      request.send(form);
    });
  }

  async function runImport(event) {
    event.preventDefault();
    const button = document.getElementById("import-submit");
    const fileInput = document.getElementById("import-files");
    const jsonInput = document.getElementById("import-json");
    const bar = progressBar("import-progress");
    await run("import-error", async () => {
      let outcome;
      if (fileInput.files.length) {
        outcome = await uploadFiles([...fileInput.files], bar);
      } else {
        let tasks;
        try { tasks = JSON.parse(jsonInput.value); } catch (_) {
          throw new Error("Choose files, or paste tasks as JSON: a list such as [{\"ocr\": \"https://…/page.png\"}].");
        }
        bar.set(null, "Importing…");
        outcome = await api("POST", `/projects/${projectId}/import`, { body: tasks });
      }
      if (outcome.import !== undefined) {
        bar.set(0, "Queued…");
        const job = await watchJob({
          kind: "import", id: outcome.import, bar, describe: (state) => `Importing: ${state.done !== undefined ? counted(state) : statusText(state.status)}`,
          readStatus: () => api("GET", `/projects/${projectId}/imports/${outcome.import}`),
        });
        if (job.status !== "completed") throw new Error(`The import failed: ${job.error || job.status}`);
        outcome = job;
      }
      bar.set(100, `Imported ${outcome.task_count} task${outcome.task_count === 1 ? "" : "s"}.`);
      flash(`Imported ${outcome.task_count} task${outcome.task_count === 1 ? "" : "s"}.`);
      fileInput.value = "";
      jsonInput.value = "";
      refreshCounts();
      loadTasks();
    }, button);
  }

  // Export: a snapshot (JSON), converted when another format is chosen, then a download link.
  async function runExport() {
    const button = document.getElementById("export-create");
    const format = document.getElementById("export-format").value;
    const bar = progressBar("export-progress");
    const link = document.getElementById("export-download");
    link.hidden = true;
    await run("export-error", async () => {
      bar.set(null, "Creating the snapshot…");
      let snapshot = await api("POST", `/projects/${projectId}/exports/`, { body: {} });
      const readSnapshot = () => api("GET", `/projects/${projectId}/exports/${snapshot.id}`);
      if (!TERMINAL.has(snapshot.status)) {
        snapshot = await watchJob({ kind: "export", id: snapshot.id, bar, readStatus: readSnapshot,
          describe: (state) => `Exporting: ${state.done !== undefined ? counted(state) : statusText(state.status)}` });
      }
      if (snapshot.status !== "completed") throw new Error(`The export failed (${snapshot.status}).`);
      if (format !== "JSON") {
        bar.set(null, `Converting to ${format}…`);
        await api("POST", `/projects/${projectId}/exports/${snapshot.id}/convert`, { body: { export_type: format } });
        const converted = () => readSnapshot().then((state) => ({
          ...((state.converted_formats || []).find((item) => item.export_type === format) || { status: "in_progress" }),
        }));
        let state = await converted();
        if (!TERMINAL.has(state.status)) {
          state = await watchJob({ kind: "convert", id: snapshot.id, bar, readStatus: converted,
            describe: () => `Converting to ${format}…` });
        }
        if (state.status !== "completed") throw new Error(`The conversion to ${format} failed.`);
      }
      bar.set(100, `Export ${snapshot.id} is ready.`);
      link.href = `${config.apiBase}/projects/${projectId}/exports/${snapshot.id}/download?exportType=${encodeURIComponent(format)}`;
      link.textContent = `Download ${format}`;
      link.hidden = false;
    }, button);
  }

  if (config.can.import) document.getElementById("import-form").addEventListener("submit", runImport);
  if (config.can.export) document.getElementById("export-create").addEventListener("click", runExport);

  // --- live events ------------------------------------------------------------------------------

  stream
    .on("hello", (event) => {
      remember(event.you);
      locks.reset(event.locks || []);
      presence.clear();
      for (const entry of event.presence || []) presence.set(remember(entry.user).id, entry);
      showAllLocks();
      showPresence();
    })
    .on("task.locked", (event) => {
      locks.take(event.task, event.user, event.until);
      showLock(event.task);
      feedItem({ when: now(), who: event.user, kind: "lock", text: `locked task ${event.task}` });
    })
    .on("task.unlocked", (event) => {
      locks.release(event.task, event.user);
      showLock(event.task);
      feedItem({ when: now(), who: event.user, kind: "unlock", text: `unlocked task ${event.task} (${UNLOCK_TEXT[event.reason] || "released"})` });
    })
    .on("task.lock_expired", (event) => {
      locks.release(event.task, event.user);
      showLock(event.task);
      feedItem({ when: now(), who: event.user, kind: "lock-expired", text: `let the lock on task ${event.task} expire` });
    })
    .on("annotation.created", (event) => {
      showTaskCounts(event.task, event.task_counts);
      feedItem({ when: now(), who: event.user, kind: event.was_cancelled ? "skipped" : "submitted",
        text: event.was_cancelled ? `skipped task ${event.task}` : `submitted an annotation on task ${event.task}` });
      refreshCounts();
    })
    .on("annotation.updated", (event) => {
      showTaskCounts(event.task, event.task_counts);
      feedItem({ when: now(), who: event.user, kind: "updated", text: `updated an annotation on task ${event.task}` });
      refreshCounts();
    })
    .on("annotation.bulk_created", (event) => {
      for (const [taskId, counts] of Object.entries(event.task_counts || {})) showTaskCounts(Number(taskId), counts);
      const count = (event.annotations || []).length;
      feedItem({ when: now(), who: event.user, kind: "submitted",
        text: `created ${count} annotation${count === 1 ? "" : "s"} on ${(event.tasks || []).length} task(s)` });
      refreshCounts();
    })
    .on("tasks.created", (event) => {
      feedItem({ when: now(), who: null, kind: "import", text: `${event.count} task${event.count === 1 ? " was" : "s were"} imported` });
      refreshCounts();
      refreshTasks();
    })
    .on("tasks.deleted", (event) => {
      feedItem({ when: now(), who: null, kind: "deleted", text: `${event.count} task${event.count === 1 ? " was" : "s were"} deleted` });
      refreshCounts();
      refreshTasks();
    })
    .on("annotation.deleted", (event) => {
      for (const [taskId, counts] of Object.entries(event.task_counts || {})) showTaskCounts(Number(taskId), counts);
      const count = (event.annotations || []).length;
      feedItem({ when: now(), who: null, kind: "deleted",
        text: `${count} annotation${count === 1 ? " was" : "s were"} deleted` });
      refreshCounts();
    })
    .on("review.created", (event) => {
      feedItem({ when: now(), who: event.user, kind: "review",
        text: `${event.accepted ? "accepted" : "rejected"} an annotation on task ${event.task}` });
    })
    .on("presence.joined", (event) => { presence.set(remember(event.user).id, { user: event.user, task: null }); showPresence(); })
    .on("presence.left", (event) => { presence.delete(event.user.id); showPresence(); })
    .on("presence.moved", (event) => { presence.set(remember(event.user).id, { user: event.user, task: event.task }); showPresence(); })
    .on("job.progress", onJobProgress)
    .on("member.removed", () => { flash("You no longer have access to this project."); stream.stop(); });

  showLiveState(stream, document.getElementById("live-status"));
  stream.onState(() => showPresence());
  stream.start();
  loadTasks();
  loadHistory();
})();
