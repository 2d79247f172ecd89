"use strict";
/* The group-mapping editor's behaviour (markup: _group_mappings.html); needs Admin (accounts/admin/_api.js). */
window.GroupMappings = (() => {
  const { h } = Admin;
  const editable = {{ can_change|yesno:"true,false" }};
  const roles = JSON.parse(document.getElementById("mapping-roles").textContent);
  const workspaces = JSON.parse(document.getElementById("mapping-workspaces").textContent);
  const projects = JSON.parse(document.getElementById("mapping-projects").textContent);
  const projectRoles = ["Inherit", "Annotator", "Reviewer"];

  function select(options, value, label) {
    const known = options.some(([optionValue]) => String(optionValue) === String(value));
    const all = known || value === undefined || value === "" ? options : [...options, [value, `${value} (missing)`]];
    return h("select", { "aria-label": label, disabled: !editable },
      all.map(([optionValue, text]) => h("option", { value: optionValue, selected: String(optionValue) === String(value) }, text)));
  }
  function groupInput(value) {
    return h("input", { type: "text", value: value || "", placeholder: "group name", "aria-label": "Group",
                        readOnly: !editable, dataset: { role: "group" } });
  }
  function removeCell() {
    return h("td", { class: "actions" }, editable ? h("button", { type: "button", class: "danger-outline small",
      onclick: (event) => event.currentTarget.closest("tr").remove() }, "Remove") : null);
  }
  const builders = {
    "map-roles": ([role, group] = []) => h("tr", { dataset: { testid: "mapping-row" } },
      h("td", {}, groupInput(group)), h("td", {}, select(roles.map((r) => [r, r]), role || roles[roles.length - 1], "Role")),
      removeCell()),
    "map-workspaces": ([title, group] = []) => h("tr", { dataset: { testid: "mapping-row" } },
      h("td", {}, groupInput(group)), h("td", {}, select(workspaces.map((w) => [w, w]), title ?? workspaces[0], "Workspace")),
      removeCell()),
    "map-projects": ({ project_id, group, role } = {}) => h("tr", { dataset: { testid: "mapping-row" } },
      h("td", {}, groupInput(group)),
      h("td", {}, select(projects.map((p) => [p.id, p.title || `Project ${p.id}`]), project_id ?? (projects[0] || {}).id, "Project")),
      h("td", {}, select(projectRoles.map((r) => [r, r]), role || "Inherit", "Project role")), removeCell()),
  };
  function fill(id, items) {
    const body = document.getElementById(id);
    body.replaceChildren(...(items || []).map((item) => builders[id](item)));
    if (!body.children.length && !editable) body.append(h("tr", { class: "empty" }, h("td", { colspan: 4 }, "None.")));
  }
  for (const id of Object.keys(builders)) {
    const add = document.getElementById(`${id}-add`);
    if (add) add.addEventListener("click", () => document.getElementById(id).append(builders[id]()));
  }
  function values(id) {
    return [...document.getElementById(id).querySelectorAll("tr[data-testid=mapping-row]")].map((row) => ({
      group: row.querySelector("[data-role=group]").value.trim(),
      choices: [...row.querySelectorAll("select")].map((box) => box.value),
    }));
  }
  return {
    show(settings) {
      fill("map-roles", settings.roles_groups);
      fill("map-workspaces", settings.workspaces_groups);
      fill("map-projects", settings.projects_groups);
    },
    read() {
      return {
        roles_groups: values("map-roles").map(({ group, choices }) => [choices[0], group]),
        workspaces_groups: values("map-workspaces").map(({ group, choices }) => [choices[0], group]),
        projects_groups: values("map-projects").map(({ group, choices }) => (
          { project_id: Number(choices[0]), group, role: choices[1] })),
      };
    },
  };
})();
