"use strict";
/* A project's cloud storage page: the source and target storages (status, last sync, count), sync
   and delete, and the form that connects a new one (checked with /validate before it is saved).
   Sync progress comes over the project's socket (job.progress of kind storage_sync); a finished
   sync's row is read again from the API. */
(() => {
  const { api, h, run, flash, confirmAction } = Admin;
  const { config, showLiveState } = LabelingPages;
  const projectId = config.project.id;
  const canChange = config.canChange;
  const BASE = { import: "/storages", export: "/storages/export" };

  // The form's fields by type: [name, label, kind, help]; kind: text, secret, textarea, number, flag.
  const COMMON_IMPORT = [
    ["prefix", "Prefix", "text", "Only objects under this folder."],
    ["regex_filter", "File filter (regular expression)", "text", "e.g. \\.(png|jpe?g|tiff?)$"],
    ["use_blob_urls", "Treat every object as a source file (one task per file)", "flag"],
    ["recursive_scan", "Scan sub-folders", "flag"],
    ["presign", "Use signed URLs", "flag"],
    ["presign_ttl", "Signed URL lifetime (minutes)", "number"],
  ];
  const COMMON_EXPORT = [
    ["prefix", "Prefix", "text", "Annotations are written as <prefix>/<annotation id>."],
    ["can_delete_objects", "Delete an object when its annotation is deleted", "flag"],
  ];
  const FIELDS = {
    s3: [["bucket", "Bucket", "text"], ["region_name", "Region", "text"],
      ["s3_endpoint", "Endpoint (MinIO or another S3 service)", "text"],
      ["aws_access_key_id", "Access key id", "secret"], ["aws_secret_access_key", "Secret access key", "secret"],
      ["aws_session_token", "Session token", "secret"], ["aws_sse_kms_key_id", "SSE-KMS key id", "text"],
      ["role_arn", "Role ARN to assume", "text"], ["external_id", "External id", "text"]],
    gcs: [["bucket", "Bucket", "text"], ["google_project_id", "Project id", "text"],
      ["google_application_credentials", "Service account key (JSON)", "textarea"]],
    azure: [["container", "Container", "text"], ["account_name", "Account name", "text"],
      ["account_key", "Account key", "secret"], ["sas_token", "Or a SAS token", "secret"]],
    redis: [["host", "Host", "text"], ["port", "Port", "number"], ["db", "Database", "number"],
      ["path", "Key prefix", "text"], ["password", "Password", "secret"]],
    localfiles: [["path", "Folder (below this organization's folder on the server)", "text"]],
  };
  const DEFAULTS = { presign: true, presign_ttl: 15, port: 6379, db: 0 };
  const TITLES = Object.fromEntries(config.types.map((type) => [type.name, type.title]));

  const rowsOf = { import: document.getElementById("import-rows"), export: document.getElementById("export-rows") };
  const storages = new Map(); // `${direction}:${id}` -> storage

  function where(storage) {
    const place = storage.bucket || storage.container || storage.path || (storage.host && `${storage.host}:${storage.port || 6379}`);
    return [place, storage.prefix].filter(Boolean).join(" / ") || "—";
  }

  function statusCell(storage) {
    const badge = h("span", { class: `badge status-${storage.status}`, dataset: { testid: "storage-status" } },
      storage.status.replace(/_/g, " "));
    return storage.status === "failed" && storage.traceback
      ? [badge, h("div", { class: "help", dataset: { testid: "storage-error" } }, storage.traceback)] : [badge];
  }

  function storageRow(direction, storage) {
    const key = `${direction}:${storage.id}`;
    storages.set(key, storage);
    const actions = canChange ? [
      h("button", { type: "button", class: "small", dataset: { testid: "storage-sync" },
        onclick: (event) => sync(direction, storage, event.target) }, "Sync"),
      h("button", { type: "button", class: "small secondary danger",
        onclick: (event) => remove(direction, storage, event.target) }, "Delete"),
    ] : [];
    return h("tr", { dataset: { testid: "storage-row", storageId: storage.id, direction } },
      h("td", {}, storage.title || `Storage ${storage.id}`),
      h("td", {}, TITLES[storage.type] || storage.type),
      h("td", {}, where(storage)),
      h("td", {}, statusCell(storage)),
      h("td", {}, storage.last_sync ? new Date(storage.last_sync).toLocaleString() : "never"),
      h("td", { class: "number", dataset: { testid: "storage-count" } }, storage.last_sync_count ?? "—"),
      h("td", { class: "actions" }, actions));
  }

  function showRows(direction, list) {
    const body = rowsOf[direction];
    body.replaceChildren(...(list.length ? list.map((storage) => storageRow(direction, storage))
      : [h("tr", { class: "empty" }, h("td", { colspan: 7 }, "None yet."))]));
  }

  async function load() {
    await run("storages-error", async () => {
      for (const direction of ["import", "export"]) {
        showRows(direction, await api("GET", BASE[direction], { params: { project: projectId } }));
      }
    });
  }

  async function refreshRow(direction, id) {
    const known = storages.get(`${direction}:${id}`);
    if (!known) return;
    const storage = await api("GET", `${BASE[direction]}/${known.type}/${id}`).catch(() => null);
    const row = rowsOf[direction].querySelector(`tr[data-storage-id="${id}"]`);
    if (storage && row) row.replaceWith(storageRow(direction, storage));
  }

  async function sync(direction, storage, button) {
    await run("storages-error", async () => {
      const queued = await api("POST", `${BASE[direction]}/${storage.type}/${storage.id}/sync`);
      await refreshRow(direction, queued.id);
      flash(`Sync of ${storage.title || `storage ${storage.id}`} started.`);
    }, button);
  }

  async function remove(direction, storage, button) {
    const sure = await confirmAction(`Disconnect ${storage.title || `storage ${storage.id}`}? Tasks it imported stay.`,
      "Disconnect");
    if (!sure) return;
    await run("storages-error", async () => {
      await api("DELETE", `${BASE[direction]}/${storage.type}/${storage.id}`);
      await load();
    }, button);
  }

  // --- the form -----------------------------------------------------------------------------------

  const form = document.getElementById("storage-form");
  const typeSelect = document.getElementById("storage-type");
  const directionSelect = document.getElementById("storage-direction");
  const fieldsBox = document.getElementById("storage-fields");

  function input(name, label, kind, help) {
    const id = `storage-field-${name}`;
    const value = DEFAULTS[name];
    let control;
    if (kind === "flag") {
      control = h("input", { type: "checkbox", id, name, checked: Boolean(value) });
      return h("div", { class: "field checkbox" }, control, h("label", { for: id }, label));
    }
    if (kind === "textarea") control = h("textarea", { id, name, rows: 4, spellcheck: false });
    else control = h("input", { id, name, type: kind === "secret" ? "password" : kind === "number" ? "number" : "text",
      value: value ?? "", autocomplete: kind === "secret" ? "new-password" : "off" });
    return h("div", { class: "field" }, h("label", { for: id }, label), control, help ? h("p", { class: "help" }, help) : null);
  }

  function showFields() {
    const common = directionSelect.value === "import" ? COMMON_IMPORT : COMMON_EXPORT;
    const localOnly = typeSelect.value === "redis" ? common.filter(([name]) => !["use_blob_urls", "presign", "presign_ttl",
      "recursive_scan"].includes(name)) : common;
    fieldsBox.replaceChildren(input("title", "Title", "text"),
      ...FIELDS[typeSelect.value].map((field) => input(...field)), ...localOnly.map((field) => input(...field)));
  }

  function formBody() {
    const body = { project: projectId };
    for (const element of fieldsBox.querySelectorAll("input, textarea")) {
      if (element.type === "checkbox") body[element.name] = element.checked;
      else if (element.type === "number") { if (element.value !== "") body[element.name] = Number(element.value); }
      else if (element.value !== "") body[element.name] = element.value;
    }
    return body;
  }

  if (form) {
    typeSelect.addEventListener("change", showFields);
    directionSelect.addEventListener("change", showFields);
    showFields();
    document.getElementById("storage-validate").addEventListener("click", (event) => run("storage-form-error", async () => {
      await api("POST", `${BASE[directionSelect.value]}/${typeSelect.value}/validate`, { body: formBody() });
      flash("The connection works.");
    }, event.target));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      run("storage-form-error", async () => {
        const storage = await api("POST", `${BASE[directionSelect.value]}/${typeSelect.value}/`, { body: formBody() });
        flash(`Connected ${storage.title || `storage ${storage.id}`}; sync it to ${directionSelect.value === "import" ? "import its files" : "write every annotation"}.`);
        showFields();
        await load();
      }, document.getElementById("storage-save"));
    });
  }

  // --- live progress ------------------------------------------------------------------------------

  const stream = Realtime.projectStream(config.socketPath);
  stream.on("job.progress", (event) => {
    if (event.job.kind !== "storage_sync") return;
    for (const direction of ["import", "export"]) {
      const row = rowsOf[direction].querySelector(`tr[data-storage-id="${event.job.id}"]`);
      if (!row) continue;
      if (event.status === "in_progress") {
        row.querySelector("[data-testid=storage-status]").textContent = `syncing · ${event.done}`;
      } else {
        refreshRow(direction, event.job.id);
      }
    }
  });
  showLiveState(stream, document.getElementById("live-status"));
  stream.start();
  load();
})();
