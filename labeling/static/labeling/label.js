"use strict";
/* The labeling screen: Label Studio's editor (npm @heartexlabs/label-studio 1.4.0, global
   `LabelStudio`) on one task at a time.

   - The task comes from the label stream (GET /api/projects/{id}/next, which reserves it), or, with
     ?task=<id>, is that task once the socket's `task.open` got its lock; a task held by others up to
     its overlap opens read-only, naming who holds it. Without a socket a given task opens unlocked.
   - Submit POSTs /api/tasks/{id}/annotations (an annotation already made is PATCHed at
     /api/annotations/{id}); skip is an annotation with was_cancelled; both move on to the next task.
   - Drafts: every few seconds, if the work changed, POST .../drafts; reopening the task restores it.
   - Earlier work is given to the editor as `annotations` (its `draft` field restores a draft).
   - The socket (realtime.js) carries task.open / heartbeat / task.close, and the sidebar's who is
     here and which tasks are locked. */
(() => {
  const { api, h, flash } = Admin;
  const { config, remember, personName, withMediaUrls, holdersText, Locks, showLiveState } = LabelingPages;
  const projectId = config.project.id;
  const DRAFT_EVERY_MS = 3000;
  const LOCK_ANSWER_MS = 5000;
  const CONNECT_WAIT_MS = 3000;
  const EDIT_INTERFACES = ["panel", "update", "submit", "controls", "side-column", "topbar",
    "annotations:current", "annotations:history", "edit-history"];
  const READ_ONLY_INTERFACES = ["panel", "side-column", "topbar", "annotations:current"];

  const stream = Realtime.projectStream(config.socketPath);
  const locks = new Locks(config.locks);
  const presence = new Map();
  const status = document.getElementById("task-status");
  const notice = document.getElementById("task-notice");
  const errorBox = document.getElementById("label-error");

  let editor = null;   // the LabelStudio instance
  let current = null;  // the task on screen: {task, store, annotationId, readOnly, opened, lastSaved, ...}
  let draftTimer = null;

  // --- the sidebar ------------------------------------------------------------------------------

  function showPresence() {
    const list = document.getElementById("presence");
    if (!stream.connected) {
      list.replaceChildren(h("li", { class: "muted" }, "Shown while live updates are on."));
      return;
    }
    const others = [...presence.values()].filter((entry) => entry.user.id !== config.me.id);
    list.replaceChildren(...others.map(({ user, task }) => h("li", { dataset: { testid: "presence-item", userId: user.id } },
      h("strong", {}, personName(user)), h("span", { class: "muted" }, task ? ` on task ${task}` : " here"))));
    if (!others.length) list.append(h("li", { class: "muted" }, "Nobody else right now."));
  }

  function showLocks() {
    const list = document.getElementById("locked-tasks");
    const taskIds = locks.tasks();
    list.replaceChildren(...taskIds.map((taskId) => h("li", { dataset: { testid: "locked-task", taskId } },
      h("strong", {}, `Task ${taskId}`), h("span", { class: "muted" }, ` ${holdersText(locks.holders(taskId))}`))));
    if (!taskIds.length) list.append(h("li", { class: "muted" }, "No task is locked."));
  }

  function showError(error) {
    errorBox.textContent = error ? (error.message || String(error)) : "";
    if (error && error.validationErrors) {
      const list = h("ul");
      for (const [field, messages] of Object.entries(error.validationErrors)) {
        for (const message of [].concat(messages)) list.append(h("li", {}, `${field}: ${typeof message === "string" ? message : JSON.stringify(message)}`));
      }
      errorBox.append(list);
    }
    errorBox.hidden = !error;
  }

  function showNotice(content) {
    notice.replaceChildren(...[].concat(content || []));
    notice.hidden = !content;
  }

  // --- locks over the socket --------------------------------------------------------------------

  /* Take (or share) this person's lock on the task: {granted}, {refused, holders} or {offline}. */
  async function takeLock(taskId) {
    if (!await stream.whenConnected(CONNECT_WAIT_MS)) return { offline: true };
    const answer = stream.next("*", (event) => event.task === taskId
      && (event.type === "task.lock_granted" || event.type === "task.lock_refused"), LOCK_ANSWER_MS);
    stream.openTask(taskId);
    const event = await answer;
    if (!event) return { offline: true };
    if (event.type === "task.lock_refused") {
      stream.forgetTask(taskId);
      return { refused: true, holders: event.holders || [] };
    }
    return { granted: true, until: event.until };
  }

  // --- drafts -----------------------------------------------------------------------------------

  function currentResult() {
    const annotation = current && current.store && current.store.annotationStore.selected;
    return annotation ? annotation.serializeAnnotation() : null;
  }

  async function saveDraft({ keepalive = false } = {}) {
    if (!current || current.readOnly || current.finishing || current.savingDraft) return;
    const result = currentResult();
    if (result === null) return;
    const text = JSON.stringify(result);
    if (text === current.lastSaved) return;
    const path = current.annotationId ? `/annotations/${current.annotationId}/drafts` : `/tasks/${current.task.id}/drafts`;
    const body = { result, lead_time: leadTime() };
    current.savingDraft = true;
    const saving = current;
    try {
      if (keepalive) {
        // The page is going away: a request that outlives it (no answer is read).
        fetch(`${config.apiBase}${path}`, { method: "POST", keepalive: true, credentials: "same-origin",
          headers: { "Content-Type": "application/json", "X-CSRFToken": document.querySelector("meta[name=csrf-token]").content },
          body: JSON.stringify(body) });
      } else {
        await api("POST", path, { body });
      }
      saving.lastSaved = text;
      document.getElementById("draft-status").textContent = `Draft saved at ${new Date().toLocaleTimeString()}`;
    } catch (error) {
      document.getElementById("draft-status").textContent = `The draft could not be saved: ${error.message}`;
    } finally {
      saving.savingDraft = false;
    }
  }

  // --- submit, update, skip ---------------------------------------------------------------------

  const leadTime = () => (current ? Math.round((Date.now() - current.startedAt) / 100) / 10 : null);

  async function save(annotation, { cancelled }) {
    if (!current || current.readOnly || current.finishing) return;
    const task = current.task;
    current.finishing = true;  // no draft after this: the server drops the draft on submit
    showError(null);
    const body = { result: annotation.serializeAnnotation(), was_cancelled: cancelled, lead_time: leadTime() };
    try {
      if (current.annotationId) await api("PATCH", `/annotations/${current.annotationId}`, { body });
      else await api("POST", `/tasks/${task.id}/annotations`, { body });
    } catch (error) {
      current.finishing = false;
      showError(error);
      return;
    }
    flash(cancelled ? `Task ${task.id} skipped.` : `Task ${task.id} saved.`);
    openNext();
  }

  // --- the editor -------------------------------------------------------------------------------

  /* What the editor starts from: this person's own annotation of the task (the latest), or a new one;
     either with the person's draft of it. Read-only: the same, not editable. */
  function startingAnnotation(task, { readOnly }) {
    const mine = (task.annotations || []).filter((annotation) => annotation.completed_by === config.me.id);
    const existing = mine.length ? mine[mine.length - 1] : null;
    const draft = (task.drafts || []).filter((candidate) => candidate.user === config.me.id
      && (candidate.annotation || null) === (existing ? existing.id : null)).pop();
    const start = existing ? { id: existing.id, result: existing.result } : { userGenerate: true, result: [] };
    if (draft && !readOnly) start.draft = draft.result;
    if (readOnly) start.editable = false;
    return { start, existing, draft };
  }

  function mount(task, { readOnly, holders = [], offline = false }) {
    const { start, existing, draft } = startingAnnotation(task, { readOnly });
    const interfaces = readOnly ? READ_ONLY_INTERFACES
      : EDIT_INTERFACES.concat(config.showSkip && !existing ? ["skip"] : []);
    current = {
      task, readOnly, store: null, finishing: false, savingDraft: false, startedAt: Date.now(),
      annotationId: existing ? existing.id : null, opened: !readOnly && !offline,
      lastSaved: JSON.stringify(draft ? draft.result : start.result),
    };
    document.getElementById("task-title").textContent = `Task ${task.id}`;
    document.body.dataset.taskId = String(task.id);
    document.body.dataset.mode = readOnly ? "read-only" : "edit";
    status.textContent = readOnly ? "Read-only" : existing ? "Your annotation (update it)" : "New annotation";
    if (readOnly) {
      showNotice([h("strong", {}, "Read-only: "), `held by ${holdersText(holders) || "someone else"}.`]);
    } else if (offline) {
      showNotice("Live updates are off: this task is not locked for you, and others may open it too.");
    } else {
      showNotice(draft ? "Your draft of this task was restored." : null);
    }
    document.getElementById("draft-status").textContent = "";
    if (editor) editor.destroy();
    editor = new LabelStudio("label-studio", {
      config: config.labelConfig,
      interfaces,
      user: { pk: config.me.id, firstName: config.me.first_name || config.me.email, lastName: config.me.last_name || "" },
      task: { id: task.id, data: withMediaUrls(task.data), annotations: [start], predictions: [] },
      onLabelStudioLoad: (store) => { if (current && current.task === task) current.store = store; },
      // The work as the editor serializes it once loaded: the draft timer saves only what differs.
      onStorageInitialized: (store) => {
        if (!current || current.task !== task) return;
        current.store = store;
        const annotation = store.annotationStore.selected;
        if (annotation) current.lastSaved = JSON.stringify(annotation.serializeAnnotation());
      },
      onSubmitAnnotation: (store, annotation) => save(annotation, { cancelled: false }),
      onUpdateAnnotation: (store, annotation) => save(annotation, { cancelled: false }),
      onSkipTask: (store) => save(store.annotationStore.selected, { cancelled: true }),
    });
    clearInterval(draftTimer);
    if (!readOnly) draftTimer = setInterval(() => saveDraft(), DRAFT_EVERY_MS);
  }

  function leaveCurrent() {
    clearInterval(draftTimer);
    if (current && current.opened) stream.closeTask(current.task.id);
    current = null;
  }

  function showNoMoreTasks(message) {
    if (editor) { editor.destroy(); editor = null; }
    document.getElementById("label-studio").replaceChildren(h("div", { class: "card done", dataset: { testid: "no-more-tasks" } },
      h("h2", {}, "All done"), h("p", {}, message || "No more tasks to label in this project."),
      h("a", { href: `${config.orgBase}projects/${projectId}/` }, "Back to the project")));
    document.getElementById("task-title").textContent = "No task";
    delete document.body.dataset.taskId;
    status.textContent = "";
    showNotice(null);
  }

  function rememberTaskInUrl(taskId) {
    const url = new URL(window.location.href);
    url.searchParams.set("task", String(taskId));
    window.history.replaceState(null, "", url);
  }

  async function openNext() {
    leaveCurrent();
    status.textContent = "Loading the next task…";
    let task;
    try {
      task = await api("GET", `/projects/${projectId}/next`);
    } catch (error) {
      if (error.status === 404) showNoMoreTasks(error.message);
      else showError(error);
      return;
    }
    // The label stream reserved it for this person; task.open joins that lock to this socket.
    const lock = await takeLock(task.id);
    rememberTaskInUrl(task.id);
    mount(task, { readOnly: Boolean(lock.refused), holders: lock.holders, offline: Boolean(lock.offline) });
  }

  async function openGiven(taskId) {
    leaveCurrent();
    status.textContent = `Opening task ${taskId}…`;
    let task;
    try {
      task = await api("GET", `/tasks/${taskId}`);
    } catch (error) {
      showError(error);
      return;
    }
    if (task.project !== projectId) { showError(new Error(`Task ${taskId} is not in this project.`)); return; }
    const lock = await takeLock(task.id);
    mount(task, { readOnly: Boolean(lock.refused), holders: lock.holders, offline: Boolean(lock.offline) });
  }

  // --- live events ------------------------------------------------------------------------------

  stream
    .on("hello", (event) => {
      remember(event.you);
      locks.reset(event.locks || []);
      presence.clear();
      for (const entry of event.presence || []) presence.set(remember(entry.user).id, entry);
      showLocks();
      showPresence();
    })
    .on("task.locked", (event) => { locks.take(event.task, event.user, event.until); showLocks(); })
    .on("task.unlocked", (event) => {
      locks.release(event.task, event.user);
      showLocks();
      if (current && current.readOnly && current.task.id === event.task && !locks.holders(event.task).length) {
        showNotice([`Task ${event.task} is free now. `,
          h("button", { type: "button", class: "small", onclick: () => openGiven(event.task) }, "Open it to label")]);
      }
    })
    .on("task.lock_expired", (event) => { locks.release(event.task, event.user); showLocks(); })
    .on("task.lock_refused", (event) => {
      // After a reconnect, someone else may have taken the task meanwhile.
      if (current && !current.readOnly && current.task.id === event.task) {
        current.opened = false;
        showNotice(`${holdersText(event.holders || [])} took task ${event.task} while you were offline; your draft is kept.`);
      }
    })
    .on("presence.joined", (event) => { presence.set(remember(event.user).id, { user: event.user, task: null }); showPresence(); })
    .on("presence.left", (event) => { presence.delete(event.user.id); showPresence(); })
    .on("presence.moved", (event) => { presence.set(remember(event.user).id, { user: event.user, task: event.task }); showPresence(); })
    .on("member.removed", () => {
      leaveCurrent();
      showNotice("You no longer have access to this project.");
      stream.stop();
    });

  showLiveState(stream, document.getElementById("live-status"));
  stream.onState(() => showPresence());
  window.addEventListener("pagehide", () => saveDraft({ keepalive: true }));
  showLocks();
  stream.start();
  if (config.task) openGiven(config.task); else openNext();
})();
