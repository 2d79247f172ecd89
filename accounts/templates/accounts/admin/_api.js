"use strict";
/* Shared by the settings pages: calls to the organization's API with the session cookie and the
   CSRF token, inline error display, confirmation before destructive actions, small DOM helpers. */
window.Admin = (() => {
  const root = document.querySelector("[data-api-base]");
  const apiBase = root.dataset.apiBase.replace(/\/$/, "");
  const orgBase = root.dataset.orgBase;
  const orgId = Number(root.dataset.orgId);
  const me = Number(root.dataset.me);
  const roleLabels = JSON.parse(document.getElementById("role-labels").textContent);
  const FLASH_KEY = "scriptorium-admin-flash";

  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    if (match) return decodeURIComponent(match[1]);
    const meta = document.querySelector("meta[name=csrf-token]");
    return meta ? meta.content : "";
  }

  class ApiError extends Error {
    constructor(status, payload) {
      const detail = (payload && (payload.detail || payload.error)) || `The server answered ${status}.`;
      super(typeof detail === "string" ? detail : JSON.stringify(detail));
      this.status = status;
      this.validationErrors = (payload && payload.validation_errors) || null;
    }
  }

  function withParams(path, params) {
    if (!params) return path;
    const query = new URLSearchParams();
    for (const [name, value] of Object.entries(params)) {
      if (value !== undefined && value !== null && value !== "") query.set(name, value);
    }
    const text = query.toString();
    return text ? `${path}${path.includes("?") ? "&" : "?"}${text}` : path;
  }

  /* api("PATCH", "/session-policy/", {body: {...}}) -> parsed JSON (or null); throws ApiError. */
  async function api(method, path, { body, params } = {}) {
    const headers = { Accept: "application/json" };
    const init = { method, headers, credentials: "same-origin" };
    if (method !== "GET") headers["X-CSRFToken"] = csrfToken();
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(apiBase + withParams(path, params), init);
    const text = await response.text();
    let payload = null;
    if (text) {
      try { payload = JSON.parse(text); } catch (_) { payload = { detail: text.slice(0, 300) }; }
    }
    if (!response.ok) throw new ApiError(response.status, payload);
    return payload;
  }

  /* A list answer, paginated ({results}) or plain. */
  function rows(payload) {
    if (Array.isArray(payload)) return payload;
    return (payload && payload.results) || [];
  }

  /* h("td", {class: "x", onclick: fn, dataset: {id: 1}}, "text", childNode) */
  function h(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name === "dataset") Object.assign(node.dataset, value);
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else if (name === "class") node.className = value;
      else if (name in node && name !== "list" && name !== "form") node[name] = value;
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function byId(target) {
    return typeof target === "string" ? document.getElementById(target) : target;
  }

  function showError(target, error) {
    const box = byId(target);
    box.replaceChildren(h("div", {}, error.message || String(error)));
    const fields = error.validationErrors;
    if (fields && typeof fields === "object") {
      const list = h("ul");
      for (const [field, messages] of Object.entries(fields)) {
        const text = Array.isArray(messages) ? messages.join(" ") : typeof messages === "string" ? messages : JSON.stringify(messages);
        list.append(h("li", { dataset: { field } }, `${field}: ${text}`));
      }
      box.append(list);
    }
    box.hidden = false;
  }

  function clearError(target) {
    const box = byId(target);
    if (!box) return;
    box.hidden = true;
    box.replaceChildren();
  }

  let flashTimer = null;
  function flash(message) {
    const box = document.getElementById("flash");
    box.textContent = message;
    box.hidden = false;
    clearTimeout(flashTimer);
    flashTimer = setTimeout(() => { box.hidden = true; }, 8000);
  }

  /* Run an API action: errors go to `errorBox`, buttons are disabled meanwhile. */
  async function run(errorBox, action, ...buttons) {
    clearError(errorBox);
    buttons.forEach((button) => { if (button) button.disabled = true; });
    try {
      return await action();
    } catch (error) {
      showError(errorBox, error);
      return undefined;
    } finally {
      buttons.forEach((button) => { if (button) button.disabled = false; });
    }
  }

  function confirmAction(message, confirmLabel = "Confirm") {
    const dialog = document.getElementById("confirm-dialog");
    document.getElementById("confirm-message").textContent = message;
    document.getElementById("confirm-yes").textContent = confirmLabel;
    return new Promise((resolve) => {
      const answer = (event) => {
        const button = event.target.closest("[data-answer]");
        if (!button) return;
        dialog.removeEventListener("click", answer);
        dialog.close();
        resolve(button.dataset.answer === "yes");
      };
      dialog.addEventListener("click", answer);
      dialog.addEventListener("cancel", () => { dialog.removeEventListener("click", answer); resolve(false); }, { once: true });
      dialog.showModal();
    });
  }

  async function copyText(text, button) {
    try {
      await navigator.clipboard.writeText(text);
    } catch (_) {
      const scratch = h("textarea", { value: text });
      document.body.append(scratch);
      scratch.select();
      document.execCommand("copy");
      scratch.remove();
    }
    if (button) {
      const label = button.textContent;
      button.textContent = "Copied";
      setTimeout(() => { button.textContent = label; }, 1500);
    }
  }

  /* Reload the page and show `message` once it is back (server-rendered lists). */
  function reloadWith(message) {
    sessionStorage.setItem(FLASH_KEY, message);
    window.location.reload();
  }
  const pending = sessionStorage.getItem(FLASH_KEY);
  if (pending) {
    sessionStorage.removeItem(FLASH_KEY);
    flash(pending);
  }

  function roleLabel(code) { return roleLabels[code] || code || ""; }

  function userName(user) {
    if (!user) return "";
    const full = [user.first_name, user.last_name].filter(Boolean).join(" ");
    return full || user.email || user.username || `#${user.id}`;
  }

  function formatDate(value) {
    if (!value) return "—";
    const date = new Date(value);
    return Number.isNaN(date.getTime()) ? String(value)
      : date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
  }

  function debounce(fn, wait = 250) {
    let timer = null;
    return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), wait); };
  }

  return { api, rows, h, showError, clearError, flash, run, confirmAction, copyText, reloadWith, roleLabel,
           userName, formatDate, debounce, ApiError, orgId, orgBase, me };
})();
