/* sohoa reception desk: small progressive enhancements. Every page works without this file. */
"use strict";
(function () {
  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));

  /* ---- personal ID check while typing (mirror of ocr.validators.validate_personal_id) ---- */
  function checkOwnerId(value, provinces, thisYear) {
    const v = value.replace(/\s+/g, "");
    if (v === "") return { state: "", key: "" };
    if (/^\d{10}$/.test(v) || /^\d{10}-?\d{3}$/.test(v)) return { state: "ok", key: "okOrg" };
    if (!/^\d+$/.test(v)) return { state: "bad", key: "digits" };
    if (v.length !== 12) return { state: v.length < 12 ? "" : "bad", key: "length", pending: v.length < 12 };
    if (!provinces.includes(v.slice(0, 3))) return { state: "bad", key: "province" };
    const g = Number(v[3]);
    const year = 1900 + Math.floor(g / 2) * 100 + Number(v.slice(4, 6));
    if (year > thisYear) return { state: "bad", key: "future" };
    return { state: "ok", key: "ok" };
  }
  window.sohoaCheckOwnerId = checkOwnerId; /* exposed for tests */

  function setupOwnerField() {
    const input = $("#owner_id");
    const out = $("#owner-check");
    if (!input || !out) return;
    const provinces = (input.dataset.provinces || "").split(",");
    const year = Number(input.dataset.year) || new Date().getFullYear();
    const update = (final) => {
      const r = checkOwnerId(input.value, provinces, year);
      const show = r.state === "bad" || r.state === "ok" || (final && r.pending);
      out.textContent = show ? out.dataset[r.key] || "" : "";
      out.className = "check " + (show ? (r.state === "ok" ? "ok" : "bad") : "");
      input.setAttribute("aria-invalid", show && r.state !== "ok" ? "true" : "false");
      return r.state === "ok";
    };
    input.addEventListener("input", () => update(false));
    input.addEventListener("blur", () => update(true));
    if (input.value) update(true);
    input.form.addEventListener("submit", (ev) => {
      if (!update(true)) { ev.preventDefault(); ev.stopImmediatePropagation(); input.focus(); }
    });
  }

  /* ---- scan upload: drag and drop, file list, upload progress ---- */
  function setupUpload() {
    const form = $("#new-form");
    const input = $("#files");
    const zone = $("#dropzone");
    const list = $("#file-list");
    if (!form || !input || !zone) return;
    let files = [];
    const render = () => {
      list.innerHTML = "";
      files.forEach((f, i) => {
        const li = document.createElement("li");
        li.textContent = f.name + " (" + Math.max(1, Math.round(f.size / 1024)) + " KB)";
        const rm = document.createElement("button");
        rm.type = "button";
        rm.textContent = list.dataset.remove;
        rm.setAttribute("aria-label", list.dataset.remove + " " + f.name);
        rm.addEventListener("click", () => { files.splice(i, 1); sync(); });
        li.appendChild(rm);
        list.appendChild(li);
      });
    };
    const sync = () => {
      const dt = new DataTransfer();
      files.forEach((f) => dt.items.add(f));
      input.files = dt.files;
      render();
    };
    input.addEventListener("change", () => { files = Array.from(input.files); render(); });
    ["dragenter", "dragover"].forEach((t) => zone.addEventListener(t, (e) => { e.preventDefault(); zone.classList.add("over"); }));
    ["dragleave", "drop"].forEach((t) => zone.addEventListener(t, () => zone.classList.remove("over")));
    zone.addEventListener("drop", (e) => {
      e.preventDefault();
      files = files.concat(Array.from(e.dataTransfer.files));
      sync();
    });
    form.addEventListener("submit", (ev) => {
      if (!window.FormData || !window.XMLHttpRequest) return;
      ev.preventDefault();
      const bar = $("#upload-progress");
      const status = $("#upload-status");
      const button = $("#submit");
      const xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.upload.addEventListener("progress", (e) => {
        if (e.lengthComputable) { bar.hidden = false; bar.value = Math.round((100 * e.loaded) / e.total); }
      });
      xhr.addEventListener("load", () => {
        let body = {};
        try { body = JSON.parse(xhr.responseText); } catch (err) { body = {}; }
        if (xhr.status < 300 && body.url) { window.location.assign(body.url); return; }
        button.disabled = false; bar.hidden = true; status.textContent = "";
        showError(body.message || ("HTTP " + xhr.status));
      });
      xhr.addEventListener("error", () => { button.disabled = false; showError("network error"); });
      button.disabled = true;
      status.textContent = status.dataset.uploading;
      xhr.send(new FormData(form));
    });
  }

  function showError(message) {
    let box = $("#error");
    if (!box) {
      box = document.createElement("div");
      box.id = "error"; box.className = "alert error"; box.setAttribute("role", "alert");
      $("#main").prepend(box);
    }
    box.textContent = message;
  }

  /* ---- processing progress: poll the draft's status ---- */
  function setupProgress() {
    const box = $("#progress");
    if (!box) return;
    const received = Date.parse(box.dataset.started); /* when the scans arrived (server clock) */
    const started = Number.isNaN(received) ? Date.now() : Math.min(received, Date.now());
    const elapsed = $("#elapsed");
    const steps = ["received", "recognizing", "rendering", "ready"];
    const timer = setInterval(() => { elapsed.textContent = Math.round((Date.now() - started) / 1000); }, 500);
    const poll = () => {
      fetch(box.dataset.statusUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then((r) => r.json())
        .then((s) => {
          const at = Math.max(0, steps.indexOf(s.stage));
          $$(".steps li").forEach((li, i) => { li.className = i < at ? "done" : i === at ? "current" : ""; });
          $("#progress-bar").value = at;
          if (s.stage_label) $("#progress-stage").textContent = s.stage_label;
          if (s.status === "ready" || s.status === "failed" || s.status === "confirmed") {
            clearInterval(timer);
            window.location.assign(box.dataset.draftUrl);
          } else {
            setTimeout(poll, 400);
          }
        })
        .catch(() => setTimeout(poll, 1500));
    };
    poll();
  }

  /* ---- review: page viewer, zoom, field highlight, type change ---- */
  function setupReview() {
    const form = $("#review-form");
    if (!form) return;
    const view = $("#page-view");
    const label = $("#view-label");
    const canvas = $("#canvas");
    const viewport = $("#viewport");
    const mark = $("#highlight");
    const links = $$(".thumb-link");
    let zoom = 100;

    const show = (pos) => {
      const link = links.find((a) => Number(a.dataset.pos) === pos);
      if (!link) return;
      if (Number(view.dataset.pos) !== pos) {
        view.src = link.dataset.view;
        view.alt = link.dataset.label;
        view.dataset.pos = String(pos);
      }
      label.textContent = link.dataset.label;
      $$(".thumb").forEach((li) => li.classList.toggle("current", Number(li.dataset.pos) === pos));
      links.forEach((a) => (Number(a.dataset.pos) === pos ? a.setAttribute("aria-current", "true") : a.removeAttribute("aria-current")));
    };
    links.forEach((a) => a.addEventListener("click", (e) => { e.preventDefault(); mark.hidden = true; show(Number(a.dataset.pos)); }));

    const setZoom = (z) => { zoom = Math.min(400, Math.max(50, z)); canvas.style.width = zoom + "%"; };
    $("#zoom-in").addEventListener("click", () => setZoom(zoom + 25));
    $("#zoom-out").addEventListener("click", () => setZoom(zoom - 25));
    $("#zoom-fit").addEventListener("click", () => setZoom(100));
    viewport.addEventListener("keydown", (e) => {
      if (e.key === "+" || e.key === "=") { setZoom(zoom + 25); e.preventDefault(); }
      if (e.key === "-") { setZoom(zoom - 25); e.preventDefault(); }
      if (e.key === "0") { setZoom(100); e.preventDefault(); }
    });

    $$("input[data-page]", form).forEach((input) => {
      input.addEventListener("focus", () => {
        show(Number(input.dataset.page));
        if (!input.dataset.box) { mark.hidden = true; return; }
        const [l, t, w, h] = input.dataset.box.split(",").map(Number);
        const pad = 0.6;
        mark.style.left = (l - pad) + "%"; mark.style.top = (t - pad / 1.4) + "%";
        mark.style.width = (w + 2 * pad) + "%"; mark.style.height = (h + 2 * pad / 1.4) + "%";
        mark.hidden = false;
        const scroll = () => {
          const y = (t / 100) * canvas.offsetHeight - viewport.clientHeight / 3;
          const x = (l / 100) * canvas.offsetWidth - viewport.clientWidth / 3;
          viewport.scrollTo({ top: Math.max(0, y), left: Math.max(0, x), behavior: "smooth" });
        };
        if (view.complete) scroll(); else view.addEventListener("load", scroll, { once: true });
      });
    });
    $$("input:not([data-page])", form).forEach((input) => input.addEventListener("focus", () => { mark.hidden = true; }));

    const firstInvalid = $("input[aria-invalid=true]", form);
    if (firstInvalid && $("#error")) firstInvalid.focus(); /* after a refused confirm */
    let sent = false; /* one submission per page view: no double confirm */
    form.addEventListener("submit", (e) => {
      if (sent) { e.preventDefault(); return; }
      sent = true;
      if (e.submitter && e.submitter.value === "confirm") e.submitter.setAttribute("aria-busy", "true");
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    setupOwnerField();
    setupUpload();
    setupProgress();
    setupReview();
  });
})();
