// The demo page: a client of this service's public API, nothing else.
//
// GET /v1/models fills the picker; an image (dropped, pasted, chosen, taken
// with a phone's camera, or the sample) is posted to the model's endpoint as
// multipart `image`; the JSON answer is drawn over the image (boxes) or as
// bars (classes). The sliders re-ask with new query parameters. A problem
// answer (RFC 9457) shows its title and detail.

const $ = (id) => document.getElementById(id);

// The API's defaults (openapi.yaml), per task, for the two sliders.
const TASKS = {
  detection: { minScore: 0.5, most: 100, mostName: "Most results", mostParam: "max_results" },
  classification: { minScore: 0, most: 5, mostName: "Top classes", mostParam: "top_k" },
};
const PALETTE = ["#0b57d0", "#b3261e", "#146c2e", "#7d3c98", "#9a4d00", "#00677f", "#a3195b", "#3b4a5a"];
const REQUERY_DELAY_MS = 150;

const state = {
  models: new Map(), // name -> the model as GET /v1/models lists it
  image: null, // the Blob being asked about
  imageUrl: null, // its object URL, shown once an answer came
  inFlight: null, // the AbortController of the request under way
  timer: 0,
};

function apiHeaders() {
  const key = $("api-key").value.trim();
  return key ? { "X-API-Key": key } : {};
}

// A failed answer as { title, detail }: the problem's own when it is one.
async function problemOf(response) {
  const type = response.headers.get("Content-Type") || "";
  if (type.includes("json")) {
    try {
      const body = await response.json();
      if (body && body.title) return { title: body.title, detail: body.detail || "" };
    } catch {
      // not JSON after all: fall through to the status line
    }
  }
  return { title: `${response.status} ${response.statusText}`.trim(), detail: "" };
}

function showProblem(problem) {
  $("problem-title").textContent = problem.title;
  $("problem-detail").textContent = problem.detail;
  $("problem").hidden = false;
}

function clearProblem() {
  $("problem").hidden = true;
}

function setStatus(text) {
  $("status").textContent = text;
}

async function loadModels() {
  const picker = $("model");
  let response;
  try {
    response = await fetch("/v1/models", { headers: apiHeaders() });
  } catch {
    showProblem({ title: "The service cannot be reached", detail: "Check the connection and reload." });
    return;
  }
  if (response.status === 401) {
    $("key-field").hidden = false;
    const problem = await problemOf(response);
    setStatus(problem.detail || problem.title); // no key yet, or not a valid one
    picker.replaceChildren(new Option("Enter an API key first"));
    picker.disabled = true;
    return;
  }
  if (!response.ok) {
    showProblem(await problemOf(response));
    return;
  }
  const { models } = await response.json();
  const previous = picker.value;
  state.models = new Map(models.map((model) => [model.name, model]));
  picker.replaceChildren(...models.map((model) => new Option(`${model.name} (${model.task})`, model.name)));
  if (state.models.has(previous)) picker.value = previous;
  picker.disabled = models.length === 0;
  clearProblem();
  setStatus(models.length ? "Choose an image." : "This service has no models.");
  modelChanged();
}

function currentModel() {
  return state.models.get($("model").value);
}

// The sliders take the chosen model's task's defaults.
function modelChanged() {
  const model = currentModel();
  if (!model) return;
  $("model-description").textContent = model.description;
  const task = TASKS[model.task] || TASKS.detection;
  $("min-score").value = task.minScore;
  $("max-results").value = task.most;
  $("max-results-name").textContent = task.mostName;
  showSliderValues();
  if (state.image) ask();
}

function showSliderValues() {
  $("min-score-value").value = Number($("min-score").value).toFixed(2);
  $("max-results-value").value = $("max-results").value;
}

function useImage(blob) {
  if (!blob) return;
  if (state.imageUrl) URL.revokeObjectURL(state.imageUrl);
  state.image = blob;
  state.imageUrl = URL.createObjectURL(blob);
  ask();
}

function askSoon() {
  showSliderValues();
  clearTimeout(state.timer);
  if (state.image) state.timer = setTimeout(ask, REQUERY_DELAY_MS);
}

// Post the image to the model; only the latest request's answer is shown.
async function ask() {
  const model = currentModel();
  if (!model || !state.image) return;
  const task = TASKS[model.task] || TASKS.detection;
  const url = new URL(model.endpoint, location.href);
  url.searchParams.set("min_score", $("min-score").value);
  url.searchParams.set(task.mostParam, $("max-results").value);
  const form = new FormData();
  form.append("image", state.image, state.image.name || "image");

  if (state.inFlight) state.inFlight.abort();
  const controller = new AbortController();
  state.inFlight = controller;
  setStatus(`Asking ${model.name}…`);
  const started = performance.now();
  let response;
  let body;
  try {
    response = await fetch(url, { method: "POST", body: form, headers: apiHeaders(), signal: controller.signal });
    body = response.ok ? await response.json() : await problemOf(response);
  } catch (error) {
    if (error.name === "AbortError") return; // a newer request took its place
    showProblem({ title: "The service cannot be reached", detail: String(error.message || error) });
    setStatus("");
    return;
  } finally {
    if (state.inFlight === controller) state.inFlight = null;
  }
  if (controller.signal.aborted) return;
  const elapsed = performance.now() - started;
  if (!response.ok) {
    hideResult();
    showProblem(body);
    setStatus(`${response.status}: nothing to show.`);
    return;
  }
  clearProblem();
  showTimings(response.headers.get("Server-Timing"), elapsed);
  $("json").textContent = JSON.stringify(body, null, 2);
  $("json-details").hidden = false;
  if (model.task === "classification") showClasses(body);
  else await showDetections(body);
}

function hideResult() {
  $("figure").hidden = true;
  $("classes").hidden = true;
  $("timing-details").hidden = true;
  $("json-details").hidden = true;
}

// Boxes in the original image's pixels (upright, as the API reports its
// size), placed as shares of the shown image: right at any displayed size.
async function showDetections(result) {
  const image = $("image");
  if (image.src !== state.imageUrl) {
    image.src = state.imageUrl;
    await image.decode().catch(() => {});
  }
  const { width, height } = result.image;
  const boxes = result.detections.map((detection) => {
    const { x_min, y_min, x_max, y_max } = detection.box;
    const box = document.createElement("div");
    box.className = "box";
    box.style.left = `${(100 * x_min) / width}%`;
    box.style.top = `${(100 * y_min) / height}%`;
    box.style.width = `${(100 * (x_max - x_min)) / width}%`;
    box.style.height = `${(100 * (y_max - y_min)) / height}%`;
    box.style.setProperty("--box", PALETTE[detection.class_id % PALETTE.length]);
    const label = document.createElement("span");
    label.textContent = `${detection.label} ${percent(detection.score)}`;
    box.append(label);
    return box;
  });
  $("boxes").replaceChildren(...boxes);
  const found = result.detections.map((d) => `${d.label} (${percent(d.score)})`).join(", ");
  const count = result.detections.length;
  image.alt = `The image, ${width}×${height}, with ${count} detection${count === 1 ? "" : "s"}`;
  $("caption").textContent = count ? `${count} found: ${found}.` : "Nothing found at this minimum score.";
  $("classes").hidden = true;
  $("figure").hidden = false;
  setStatus(`${result.model.name} v${result.model.version}: ${count} detection${count === 1 ? "" : "s"}.`);
}

function showClasses(result) {
  const rows = result.classifications.map((item) => {
    const row = document.createElement("li");
    const name = document.createElement("span");
    name.className = "label";
    name.textContent = item.label;
    const value = document.createElement("span");
    value.className = "value";
    value.textContent = percent(item.probability);
    row.append(name, bar(item.probability), value);
    return row;
  });
  $("classes").replaceChildren(...rows);
  $("classes").hidden = false;
  const image = $("image");
  if (image.src !== state.imageUrl) image.src = state.imageUrl;
  image.alt = `The image, ${result.image.width}×${result.image.height}`;
  $("boxes").replaceChildren();
  const top = result.classifications[0];
  $("caption").textContent = top ? `Most likely: ${top.label} (${percent(top.probability)}).` : "No class at this minimum score.";
  $("figure").hidden = false;
  setStatus(`${result.model.name} v${result.model.version}: ${top ? top.label : "no class"}.`);
}

// Server-Timing ("decode;dur=2.1, inference;dur=20.3, ...") as a table, with
// the round trip the page measured.
function showTimings(header, elapsed) {
  const steps = (header || "")
    .split(",")
    .map((entry) => {
      const [name, ...params] = entry.trim().split(";");
      const dur = params.map((p) => p.trim()).find((p) => p.startsWith("dur="));
      return { name, ms: dur ? Number(dur.slice(4)) : NaN };
    })
    .filter((step) => step.name && Number.isFinite(step.ms));
  steps.push({ name: "round trip (this page)", ms: elapsed });
  const rows = steps.map((step) => {
    const row = document.createElement("tr");
    const name = document.createElement("td");
    name.textContent = step.name;
    const ms = document.createElement("td");
    ms.textContent = step.ms.toFixed(1);
    const share = document.createElement("td");
    share.append(bar(step.ms / elapsed));
    row.append(name, ms, share);
    return row;
  });
  $("timing").tBodies[0].replaceChildren(...rows);
  $("timing-details").hidden = false;
}

// A bar filled to `share` (0 to 1) of its width.
function bar(share) {
  const outer = document.createElement("span");
  outer.className = "bar";
  const fill = document.createElement("span");
  fill.style.width = `${Math.min(100, 100 * share)}%`;
  outer.append(fill);
  return outer;
}

function percent(value) {
  return `${(100 * value).toFixed(value >= 0.995 || value < 0.001 ? 0 : 1)}%`;
}

// The first file given; the service, not the page, judges whether it is an image.
function firstFile(list) {
  return list && list.length ? list[0] : null;
}

function wire() {
  $("model").addEventListener("change", modelChanged);
  $("min-score").addEventListener("input", askSoon);
  $("max-results").addEventListener("input", askSoon);
  let keyTimer = 0;
  $("api-key").addEventListener("input", () => {
    clearTimeout(keyTimer);
    keyTimer = setTimeout(loadModels, 300);
  });

  $("choose").addEventListener("click", () => $("file").click());
  $("take").addEventListener("click", () => $("camera").click());
  for (const id of ["file", "camera"]) {
    $(id).addEventListener("change", (event) => useImage(event.target.files[0]));
  }
  $("sample").addEventListener("click", async () => {
    const response = await fetch("/demo/digits.jpg");
    const type = response.headers.get("Content-Type") || "image/jpeg";
    useImage(new File([await response.arrayBuffer()], "digits.jpg", { type }));
  });
  if (matchMedia("(pointer: coarse)").matches) $("take").hidden = false;

  const drop = $("drop");
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    useImage(firstFile(event.dataTransfer.files));
  });
  document.addEventListener("paste", (event) => {
    const file = firstFile(event.clipboardData && event.clipboardData.files);
    if (file) {
      event.preventDefault();
      useImage(file);
    }
  });
}

wire();
loadModels();
