"use strict";
/* The websocket client of the project pages; the protocol is realtime/README.md (change both together).

   const stream = Realtime.projectStream(config.socketPath).start();
   stream.on("task.locked", (event) => ...);    // events dispatched by `type`; "*" gets every event
   stream.onState((state, detail) => ...);      // "connecting" | "open" | "closed" | "refused"
   stream.openTask(12); stream.closeTask(12);   // task.open / task.close; heartbeats while open

   It reconnects after a drop with exponential backoff (and jitter, so a restarted server is not hit by
   every page at once), re-opens the tasks that were open, and gives up only when the server refuses
   the socket (4401, 4403, 4404). Every 15 s it sends a heartbeat per open task, or a ping when none
   is open: the server closes a socket that says nothing for 30 s. Without a server it does nothing
   but retry: pages then show no live updates and keep working through the API. */
window.Realtime = (() => {
  const HEARTBEAT_MS = 15000;
  const FIRST_RETRY_MS = 500;
  const MAX_RETRY_MS = 30000;
  const REFUSALS = { 4401: "not signed in", 4403: "not allowed", 4404: "no such project" };

  class ProjectStream {
    constructor(url) {
      this.url = url;
      this.handlers = new Map();
      this.stateHandlers = [];
      this.openTasks = new Set();
      this.state = "closed";
      this.socket = null;
      this.attempt = 0;
      this.retryTimer = null;
      this.heartbeatTimer = null;
      this.stopped = false;
    }

    get connected() { return this.state === "open"; }

    on(type, handler) {
      if (!this.handlers.has(type)) this.handlers.set(type, []);
      this.handlers.get(type).push(handler);
      return this;
    }

    off(type, handler) {
      const list = this.handlers.get(type) || [];
      this.handlers.set(type, list.filter((candidate) => candidate !== handler));
      return this;
    }

    onState(handler) {
      this.stateHandlers.push(handler);
      handler(this.state);
      return this;
    }

    /* Resolves with the first event of `type` that `accept` takes, or null after `timeoutMs`. */
    next(type, accept = () => true, timeoutMs = 5000) {
      return new Promise((resolve) => {
        const handler = (event) => {
          if (!accept(event)) return;
          clearTimeout(timer);
          this.off(type, handler);
          resolve(event);
        };
        const timer = setTimeout(() => { this.off(type, handler); resolve(null); }, timeoutMs);
        this.on(type, handler);
      });
    }

    /* Resolves true once connected, false if not within `timeoutMs`. */
    whenConnected(timeoutMs = 3000) {
      if (this.connected) return Promise.resolve(true);
      return new Promise((resolve) => {
        const handler = (state) => {
          if (state !== "open") return;
          clearTimeout(timer);
          this.stateHandlers = this.stateHandlers.filter((candidate) => candidate !== handler);
          resolve(true);
        };
        const timer = setTimeout(() => {
          this.stateHandlers = this.stateHandlers.filter((candidate) => candidate !== handler);
          resolve(false);
        }, timeoutMs);
        this.stateHandlers.push(handler);
      });
    }

    start() {
      this.stopped = false;
      this._connect();
      return this;
    }

    stop() {
      this.stopped = true;
      clearTimeout(this.retryTimer);
      this._stopHeartbeat();
      if (this.socket) this.socket.close(1000);
      this.socket = null;
      this._setState("closed");
    }

    send(message) {
      if (!this.connected) return false;
      this.socket.send(JSON.stringify(message));
      return true;
    }

    openTask(task) {
      this.openTasks.add(task);
      return this.send({ type: "task.open", task });
    }

    closeTask(task) {
      const wasOpen = this.openTasks.delete(task);
      return wasOpen && this.send({ type: "task.close", task });
    }

    /* Stop heartbeating a task without telling the server (its lock went to someone else). */
    forgetTask(task) { this.openTasks.delete(task); }

    _emit(type, event) {
      for (const handler of [...(this.handlers.get(type) || []), ...(this.handlers.get("*") || [])]) {
        try { handler(event); } catch (error) { console.error(`realtime: a ${type} handler failed`, error); }
      }
    }

    _setState(state, detail) {
      if (this.state === state && !detail) return;
      this.state = state;
      for (const handler of [...this.stateHandlers]) handler(state, detail);
    }

    _connect() {
      let socket;
      try {
        socket = new WebSocket(this.url);
      } catch (error) {
        this._retry();
        return;
      }
      this.socket = socket;
      this._setState("connecting");
      socket.addEventListener("open", () => {
        this._setState("open");
        for (const task of this.openTasks) this.send({ type: "task.open", task });
        this._startHeartbeat();
      });
      socket.addEventListener("message", (message) => {
        // A server that says something is really up: only then may the next drop retry quickly.
        this.attempt = 0;
        let event;
        try { event = JSON.parse(message.data); } catch (_) { return; }
        if (event && typeof event.type === "string") this._emit(event.type, event);
      });
      socket.addEventListener("close", (close) => {
        if (this.socket !== socket) return;
        this._stopHeartbeat();
        this.socket = null;
        if (this.stopped) return;
        if (REFUSALS[close.code]) {
          this._setState("refused", REFUSALS[close.code]);
          return;
        }
        this._setState("closed");
        this._retry();
      });
    }

    _retry() {
      const ceiling = Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** this.attempt);
      this.attempt += 1;
      clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => this._connect(), ceiling / 2 + Math.random() * ceiling / 2);
    }

    _startHeartbeat() {
      this._stopHeartbeat();
      this.heartbeatTimer = setInterval(() => {
        if (!this.openTasks.size) this.send({ type: "ping" });
        for (const task of this.openTasks) this.send({ type: "heartbeat", task });
      }, HEARTBEAT_MS);
    }

    _stopHeartbeat() {
      clearInterval(this.heartbeatTimer);
      this.heartbeatTimer = null;
    }
  }

  /* The stream of a project, at its path on this site (`/o/<slug>/ws/projects/<id>/`): the session
     cookie goes with it. */
  function projectStream(path) {
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    return new ProjectStream(`${scheme}//${window.location.host}${path}`);
  }

  return { ProjectStream, projectStream };
})();
