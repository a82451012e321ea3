// PianoGAN studio: controls -> POST /api/generate -> poll /api/jobs/<id> -> take cards.
// The session history lives in this browser (localStorage); the takes' files in the server's cache.
"use strict";

const $ = (id) => document.getElementById(id);
const HISTORY_KEY = "pianogan.studio.history";
const POLL_MS = 400;
const TEMPI = [60, 72, 84, 96, 108, 120, 144];  // beats a minute offered for a beat-clock model
// how far a beat-clock model's beat wanders (rms radians, as generate --rubato): docs/results.md, section 23
const RUBATI = [[0, "strict"], [0.25, "a little loose"], [0.5, "loose"], [1, "very loose"]];
const state = { models: [], limits: {}, history: [], a: null, b: null, playing: "a" };

function showError(message) {
  const box = $("error");
  box.textContent = message || "";
  box.hidden = !message;
}

async function api(path, options) {
  const res = await fetch(path, options);
  let body = null;
  try { body = await res.json(); } catch (e) { body = null; }
  if (!res.ok) throw new Error((body && body.error) || `${res.status} ${res.statusText}`);
  return body;
}

function currentModel() {
  return state.models.find((m) => m.name === $("model").value);
}

function onModelChange() {
  const m = currentModel();
  if (!m) return;
  $("model-info").textContent = `${m.model}, preset ${m.preset}, step ${m.step}, ` +
    `${m.clip_seconds} s clips at ${m.sample_rate} Hz` + (m.kind === "shipped" ? " (shipped)" : "");
  const len = $("seconds");
  // A model that makes any length may also make less than one training clip.
  len.min = m.any_length ? state.limits.min_seconds : Math.min(m.clip_seconds, state.limits.max_seconds);
  len.max = state.limits.max_seconds;
  if (Number(len.value) < Number(len.min)) len.value = len.min;
  $("seconds-out").textContent = Number(len.value).toFixed(1);
  const styles = m.styles || [];
  $("style-row").hidden = styles.length === 0;
  $("style").replaceChildren(...styles.map((s) => new Option(s, s)));
  const keys = m.keys || [];
  $("key-row").hidden = keys.length === 0;
  $("key").replaceChildren(new Option("as the model draws it", ""), ...keys.map((k) => new Option(k, k)));
  $("drift-row").hidden = m.drift !== true;
  if (m.drift) {
    const own = m.drift_default ? `as the model drifts (every ${m.drift_default} s)` : "as the model plays (one key)";
    // A model that keeps one key by itself needs no second "never" option.
    const never = m.drift_default ? [new Option("never: one key throughout", "0")] : [];
    $("drift").replaceChildren(new Option(own, ""), ...never,
      ...[30, 45, 60, 90].filter((s) => s !== m.drift_default).map((s) => new Option(`every ~${s} s`, String(s))));
  }
  $("tempo-row").hidden = m.tempo !== true;
  $("rubato-row").hidden = m.tempo !== true;  // every beat-clock model takes both
  if (m.tempo) {
    $("tempo").replaceChildren(new Option("as the model draws it for the style", ""),
      ...TEMPI.map((b) => new Option(`${b} beats a minute`, String(b))));
    $("rubato").replaceChildren(new Option("as the model plays it", ""),
      ...RUBATI.map(([r, name]) => new Option(`${name} (${r} rad)`, String(r))));
  }
  $("truncation").disabled = !m.truncation;
  if (m.truncation && m.truncation_default != null) $("truncation").value = m.truncation_default;
  $("truncation-out").textContent = Number($("truncation").value).toFixed(2);
  $("truncation-note").textContent = m.truncation ? "lower = closer to the average take" :
    `the ${m.model} generator has no truncation; varies by seed`;
}

async function loadModels() {
  const data = await api("/api/models");
  state.models = data.models;
  state.limits = data.limits;
  $("takes").max = data.limits.max_takes;
  $("server-note").textContent = `up to ${data.limits.max_seconds} s, ${data.limits.max_takes} ` +
    `take(s) a request, ${data.limits.workers} worker(s)`;
  $("model").replaceChildren(...state.models.map((m) => new Option(`${m.name} (${m.model})`, m.name)));
  if (!state.models.length) showError("No models: start the server with --runs pointing at a run directory.");
  $("generate").disabled = !state.models.length;
  onModelChange();
}

function readRequest() {
  const m = currentModel();
  const body = {
    model: m.name,
    seed: Math.max(0, Math.floor(Number($("seed").value) || 0)),
    seconds: Number($("seconds").value),
    takes: Math.max(1, Math.floor(Number($("takes").value) || 1)),
    truncation: m.truncation ? Number($("truncation").value) : null,
  };
  if (!$("style-row").hidden && $("style").value) body.style = $("style").value;
  if (!$("key-row").hidden && $("key").value) body.key = $("key").value;
  if (!$("drift-row").hidden && $("drift").value !== "") body.drift = Number($("drift").value);
  if (!$("tempo-row").hidden && $("tempo").value !== "") body.tempo = Number($("tempo").value);
  if (!$("rubato-row").hidden && $("rubato").value !== "") body.rubato = Number($("rubato").value);
  return body;
}

function setProgress(job) {
  const box = $("progress-box");
  box.hidden = false;
  const bar = $("progress");
  let text;
  if (job.state === "queued") {
    bar.removeAttribute("value");  // indeterminate
    text = `waiting in the queue (${job.queue_position} ahead)`;
  } else if (job.state === "running") {
    if (job.estimated) bar.value = job.progress; else bar.removeAttribute("value");
    text = `rendering take ${Math.min(job.takes_done + 1, job.takes_total)} of ${job.takes_total}` +
      ` · ${job.elapsed_s.toFixed(0)} s` + (job.eta_s != null ? ` · about ${Math.ceil(job.eta_s)} s left (estimate)` : "");
  } else {
    bar.value = 1;
    text = job.state === "done" ? `done in ${job.elapsed_s.toFixed(1)} s` : `failed: ${job.error}`;
  }
  $("progress-text").textContent = text;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function generate() {
  showError("");
  const button = $("generate");
  button.disabled = true;
  try {
    let job = await api("/api/generate", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(readRequest()),
    });
    setProgress(job);
    while (job.state === "queued" || job.state === "running") {
      await sleep(POLL_MS);
      job = await api(`/api/jobs/${job.id}`);
      setProgress(job);
    }
    if (job.state === "failed") throw new Error(job.error);
    for (const take of job.takes) addTake(take);
  } catch (e) {
    showError(e.message);
  } finally {
    button.disabled = false;
  }
}

function saveHistory() {
  try { localStorage.setItem(HISTORY_KEY, JSON.stringify(state.history.slice(0, 100))); } catch (e) { /* private mode */ }
}

function label(take) {
  return `${take.model} · seed ${take.seed} · ${Number(take.seconds).toFixed(1)} s` +
    (take.truncation != null && take.truncation !== 1 ? ` · ψ ${take.truncation}` : "") +
    (take.key ? ` · ${take.key}` : "") +
    (take.drift != null ? (take.drift ? ` · keys move ~${take.drift} s` : " · one key") : "") +
    (take.tempo != null ? ` · ${take.tempo} bpm` : "") +
    (take.rubato != null ? ` · rubato ${take.rubato}` : "");
}

function addTake(take) {
  state.history = [take, ...state.history.filter((t) => t.id !== take.id)];
  saveHistory();
  render();
}

function render() {
  const list = $("takes-list");
  const tpl = $("take-template");
  list.replaceChildren(...state.history.map((take) => {
    const li = tpl.content.firstElementChild.cloneNode(true);
    li.dataset.take = take.id;
    li.classList.toggle("is-a", state.a && state.a.id === take.id);
    li.classList.toggle("is-b", state.b && state.b.id === take.id);
    li.querySelector(".take-title").textContent = label(take);
    const img = li.querySelector(".spectrogram");
    img.src = take.urls.spectrogram;
    img.addEventListener("error", () => li.classList.add("evicted"));
    const audio = li.querySelector(".player");
    audio.src = take.urls.audio;
    audio.addEventListener("error", () => {
      li.classList.add("evicted");
      li.querySelector(".take-meta").textContent = "no longer in the server's cache";
    });
    li.querySelector(".wav").href = take.urls.audio + "?download=1";
    const midi = li.querySelector(".midi");
    if (take.urls.midi) { midi.hidden = false; midi.href = take.urls.midi + "?download=1"; }
    li.querySelector(".record").href = take.urls.record + "?download=1";
    li.querySelector(".take-meta").textContent = `${take.sample_rate} Hz` +
      (take.cached ? " · from cache" : take.render_s ? ` · made in ${take.render_s.toFixed(1)} s` : "");
    const details = li.querySelector(".record-box");
    details.addEventListener("toggle", async () => {
      const pre = li.querySelector(".record-text");
      if (!details.open || pre.textContent) return;
      try { pre.textContent = JSON.stringify(await api(take.urls.record), null, 1); }
      catch (e) { pre.textContent = e.message; }
    });
    li.querySelector(".pick-a").addEventListener("click", () => pick("a", take));
    li.querySelector(".pick-b").addEventListener("click", () => pick("b", take));
    li.querySelector(".remove").addEventListener("click", () => {
      state.history = state.history.filter((t) => t.id !== take.id);
      saveHistory();
      render();
    });
    return li;
  }));
  $("empty").hidden = state.history.length > 0;
}

// ---- A/B: two players kept at the same position; "Switch" hands playback to the other one.
function pick(slot, take) {
  state[slot] = take;
  const audio = $(`audio-${slot}`);
  audio.src = take.urls.audio;
  $(`${slot}-label`).textContent = label(take);
  const ready = state.a && state.b;
  $("ab-play").disabled = !ready;
  $("ab-switch").disabled = !ready;
  render();
}

function abPlayer(slot) { return $(`audio-${slot}`); }

function abUpdate() {
  const other = state.playing === "a" ? "B" : "A";
  $("ab-switch").textContent = `Switch to ${other}`;
  const p = abPlayer(state.playing);
  $("ab-play").textContent = p.paused ? "Play" : "Pause";
  $("ab-now").textContent = `hearing ${state.playing.toUpperCase()} at ${p.currentTime.toFixed(1)} s`;
}

function abToggle() {
  const p = abPlayer(state.playing);
  if (p.paused) p.play().catch((e) => showError(e.message)); else p.pause();
}

function abSwitch() {
  const from = abPlayer(state.playing);
  state.playing = state.playing === "a" ? "b" : "a";
  const to = abPlayer(state.playing);
  const wasPlaying = !from.paused;
  from.pause();
  to.currentTime = Math.min(from.currentTime, Number.isFinite(to.duration) ? to.duration : from.currentTime);
  if (wasPlaying) to.play().catch((e) => showError(e.message));
  abUpdate();
}

function init() {
  try { state.history = JSON.parse(localStorage.getItem(HISTORY_KEY) || "[]"); } catch (e) { state.history = []; }
  $("dice").addEventListener("click", () => { $("seed").value = Math.floor(Math.random() * 1e6); });
  $("seconds").addEventListener("input", () => { $("seconds-out").textContent = Number($("seconds").value).toFixed(1); });
  $("truncation").addEventListener("input", () => { $("truncation-out").textContent = Number($("truncation").value).toFixed(2); });
  $("model").addEventListener("change", onModelChange);
  $("generate").addEventListener("click", generate);
  $("clear").addEventListener("click", () => { state.history = []; saveHistory(); render(); });
  $("ab-play").addEventListener("click", abToggle);
  $("ab-switch").addEventListener("click", abSwitch);
  for (const slot of ["a", "b"]) {
    for (const ev of ["play", "pause", "timeupdate"]) abPlayer(slot).addEventListener(ev, abUpdate);
  }
  render();
  loadModels().catch((e) => showError(`cannot list models: ${e.message}`));
}

document.addEventListener("DOMContentLoaded", init);
