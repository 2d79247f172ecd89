"use strict";
/* Shared by the project page and the labeling screen: the page's start-up data (labeling/views.py),
   people's names, task data URLs, lock text and the live-updates indicator. */
window.LabelingPages = (() => {
  const config = JSON.parse(document.getElementById("page-config").textContent);
  const people = new Map(Object.entries(config.people || {}).map(([id, person]) => [Number(id), person]));
  people.set(config.me.id, config.me);

  /* Events carry whole users: keep them, so ids met later (history) get a name. */
  function remember(user) {
    if (user && user.id) people.set(user.id, user);
    return user;
  }

  function personName(user) {
    const known = typeof user === "number" ? people.get(user) : user;
    if (!known) return typeof user === "number" ? `User #${user}` : "Someone";
    if (known.id === config.me.id) return "You";
    return [known.first_name, known.last_name].filter(Boolean).join(" ") || known.email || `User #${known.id}`;
  }

  /* Uploaded files are at /data/upload/... of the organization: on this site that is under /o/<slug>/. */
  function mediaUrl(url) {
    return typeof url === "string" && url.startsWith("/data/") ? `${config.orgBase}${url.slice(1)}` : url;
  }

  function withMediaUrls(data) {
    const copy = {};
    for (const [key, value] of Object.entries(data || {})) {
      copy[key] = Array.isArray(value) ? value.map(mediaUrl) : mediaUrl(value);
    }
    return copy;
  }

  function isImageUrl(value) {
    return typeof value === "string" && (/^data:image\//.test(value) || value.startsWith("/data/upload/")
      || /\.(png|jpe?g|gif|webp|bmp|tiff?)(\?.*)?$/i.test(value));
  }

  function clock(iso) {
    const date = new Date(iso);
    return Number.isNaN(date.getTime()) ? "" : date.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
  }

  /* `holders`: [{user, until}] -> "Ada (until 14:05), Ben (until 14:07)" */
  function holdersText(holders) {
    return holders.map((holder) => `${personName(holder.user)}${holder.until ? ` (until ${clock(holder.until)})` : ""}`)
      .join(", ");
  }

  /* Locks by task: task id -> Map(user id -> {user, until}); filled from the page, `hello` and events. */
  class Locks {
    constructor(list = []) { this.byTask = new Map(); this.reset(list); }

    reset(list) {
      this.byTask.clear();
      for (const lock of list) this.take(lock.task, lock.user, lock.until);
    }

    take(task, user, until) {
      remember(user);
      if (!this.byTask.has(task)) this.byTask.set(task, new Map());
      this.byTask.get(task).set(user.id, { user, until });
    }

    release(task, user) {
      const holders = this.byTask.get(task);
      if (!holders) return;
      holders.delete(user.id);
      if (!holders.size) this.byTask.delete(task);
    }

    holders(task) { return [...(this.byTask.get(task) || new Map()).values()]; }

    tasks() { return [...this.byTask.keys()].sort((a, b) => a - b); }
  }

  /* Keep `element` telling whether live updates are on (its data-state is the stream's state). */
  function showLiveState(stream, element) {
    const texts = {
      connecting: "Connecting for live updates…",
      open: "Live",
      closed: "Live updates are off; reconnecting…",
      refused: "Live updates are not available",
    };
    stream.onState((state, detail) => {
      element.dataset.state = state;
      element.textContent = detail ? `${texts[state]} (${detail})` : texts[state];
    });
  }

  return { config, people, remember, personName, mediaUrl, withMediaUrls, isImageUrl, clock, holdersText, Locks,
           showLiveState };
})();
