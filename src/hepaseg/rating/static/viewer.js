"use strict";
// The blinded viewer: one item (a case with one contour) at a time, keyboard only.
// The image is a uint16 stack (slice, row, column); the contour a bit-packed mask on the same grid
// (hepaseg/rating/images.py). Nothing the server sends says which method made a contour.
(function () {
  const IMAGE_MAX = 4095;
  const el = (id) => document.getElementById(id);
  const canvas = el("canvas");
  const context = canvas.getContext("2d");
  let state = null;    // /api/state
  let item = null;     // /api/r/<rater>/items/<index>
  let pixels = null;   // Uint16Array
  let mask = null;     // Uint8Array, bit-packed
  let slice = 0, lesion = -1, contourOn = true;
  let center = IMAGE_MAX / 2, width = IMAGE_MAX;

  async function api(path, options) {
    const answer = await fetch(path, Object.assign({credentials: "same-origin"}, options || {}));
    if (answer.status === 401) {
      location.replace("/signin");
      throw new Error("signed out");
    }
    return answer;
  }

  function itemPath(index) {
    return "/api/r/" + encodeURIComponent(state.rater) + "/items/" + index;
  }

  async function loadState() {
    state = await (await api("/api/state")).json();
    el("rater").textContent = "rater " + state.rater + (state.simulated ? " (simulated)" : "");
  }

  function firstOpen() {
    const round = state.items.filter((i) => i.round === state.current_round);
    const open = round.find((i) => i.rating === null || i.quality === null);
    return (open || round[0]).index;
  }

  async function show(index) {
    const answer = await api(itemPath(index));
    if (!answer.ok) {
      el("notice").textContent = (await answer.json()).error;
      return;
    }
    const next = await answer.json();
    const [image, contour] = await Promise.all([api(itemPath(index) + "/image"), api(itemPath(index) + "/contour")]);
    pixels = new Uint16Array(await image.arrayBuffer());
    mask = new Uint8Array(await contour.arrayBuffer());
    item = next;
    slice = item.lesion_slices.length ? item.lesion_slices[0] : Math.floor(item.shape[0] / 2);
    lesion = item.lesion_slices.length ? 0 : -1;
    const [, rows, cols] = item.shape;
    const [, rowMm, colMm] = item.pixel_mm;
    const scale = Math.min(720 / (rows * rowMm), 900 / (cols * colMm));
    canvas.width = cols;
    canvas.height = rows;
    canvas.style.width = Math.round(cols * colMm * scale) + "px";
    canvas.style.height = Math.round(rows * rowMm * scale) + "px";
    document.body.dataset.index = String(item.index);
    el("notice").textContent = "";
    el("saved").textContent = "";
    draw();
    showRatings();
    canvas.focus();
  }

  function inMask(s, r, c) {
    const [, rows, cols] = item.shape;
    if (r < 0 || c < 0 || r >= rows || c >= cols) return false;
    const bit = (s * rows + r) * cols + c;
    return (mask[bit >> 3] >> (7 - (bit & 7))) & 1;
  }

  function draw() {
    const [, rows, cols] = item.shape;
    const picture = context.createImageData(cols, rows);
    const low = center - width / 2, offset = slice * rows * cols;
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) {
        const p = r * cols + c;
        const grey = Math.max(0, Math.min(255, ((pixels[offset + p] - low) / width) * 255));
        let red = grey, green = grey, blue = grey;
        if (contourOn && inMask(slice, r, c) &&
            !(inMask(slice, r - 1, c) && inMask(slice, r + 1, c) && inMask(slice, r, c - 1) && inMask(slice, r, c + 1))) {
          red = 255; green = 220; blue = 0;  // the contour's outline
        }
        picture.data.set([red, green, blue, 255], p * 4);
      }
    }
    context.putImageData(picture, 0, 0);
    el("slice").textContent = "slice " + (slice + 1) + " of " + item.shape[0] +
      (contourOn ? "" : " (contour hidden)") +
      (item.lesion_slices.length ? ", " + item.lesion_slices.length + " largest lesion(s): l" : ", no lesion contoured");
    el("window").textContent = "window " + Math.round(width) + " / level " + Math.round(center);
    el("progress").textContent = "case " + item.position + " of " + item.cases + ", round " + item.round +
      " of " + item.rounds;
  }

  function showRatings() {
    el("rating").textContent = item.rating === null ? "-" : String(item.rating);
    el("quality").textContent = item.quality === null ? "-" : String(item.quality);
    for (const [list, value] of [["rating-scale", item.rating], ["quality-scale", item.quality]]) {
      for (const li of el(list).children) li.classList.toggle("chosen", Number(li.dataset.value) === value);
    }
  }

  async function rate(field, value) {
    const answer = await api(itemPath(item.index), {
      method: "PUT", headers: {"Content-Type": "application/json", "X-CSRF-Token": state.csrf},
      body: JSON.stringify({[field]: value}),
    });
    if (!answer.ok) {
      el("notice").textContent = "not saved: " + (await answer.json()).error;
      return;
    }
    const stored = await answer.json();
    item.rating = stored.rating;
    item.quality = stored.quality;
    item.current_round = stored.current_round;
    showRatings();
    el("saved").textContent = "saved";
    document.body.dataset.saved = String((Number(document.body.dataset.saved) || 0) + 1);
  }

  async function move(step) {
    const position = item.position - 1 + step;
    if (position >= 0 && position < item.cases) {
      await show(item.index + step);
      return;
    }
    await loadState();
    if (step > 0 && state.current_round > item.round) {
      await show(firstOpen());  // the round is complete: on to the next one
    } else if (step > 0 && state.items.every((i) => i.rating !== null && i.quality !== null)) {
      el("notice").textContent = "All cases are rated. Thank you! You may still change ratings of this round.";
    } else if (step > 0) {
      el("notice").textContent = "Some cases of this round still need a rating and an image quality.";
    }
  }

  function goToLesion(step) {
    const n = item.lesion_slices.length;
    if (!n) return;
    lesion = ((lesion + step) % n + n) % n;
    slice = item.lesion_slices[lesion];
  }

  // Ratings and moves run one after another, in the order of the key presses.
  let queue = Promise.resolve();
  function enqueue(action) {
    queue = queue.then(action).catch((error) => { el("notice").textContent = String(error); });
  }

  const QUALITY_KEYS = {q: 1, w: 2, e: 3};
  document.addEventListener("keydown", function (event) {
    if (!item || event.ctrlKey || event.metaKey || event.altKey) return;
    const key = event.key;
    const last = item.shape[0] - 1;
    let redraw = true;
    if (key >= "1" && key <= "5") { enqueue(() => rate("rating", Number(key))); redraw = false; }
    else if (key in QUALITY_KEYS) { enqueue(() => rate("quality", QUALITY_KEYS[key])); redraw = false; }
    else if (key === "ArrowUp") slice = Math.min(last, slice + 1);
    else if (key === "ArrowDown") slice = Math.max(0, slice - 1);
    else if (key === "PageUp") slice = Math.min(last, slice + 5);
    else if (key === "PageDown") slice = Math.max(0, slice - 5);
    else if (key === "l") goToLesion(1);
    else if (key === "L") goToLesion(-1);
    else if (key === "c") contourOn = !contourOn;
    else if (key === "[") width = Math.max(16, width / 1.25);
    else if (key === "]") width = Math.min(4 * IMAGE_MAX, width * 1.25);
    else if (key === "-") center -= width / 10;
    else if (key === "=") center += width / 10;
    else if (key === "0") { center = IMAGE_MAX / 2; width = IMAGE_MAX; }
    else if (key === "n" || key === "ArrowRight") { enqueue(() => move(1)); redraw = false; }
    else if (key === "p" || key === "ArrowLeft") { enqueue(() => move(-1)); redraw = false; }
    else return;
    event.preventDefault();
    if (redraw) draw();
  });
  canvas.addEventListener("wheel", function (event) {
    if (!item) return;
    event.preventDefault();
    slice = Math.max(0, Math.min(item.shape[0] - 1, slice + (event.deltaY < 0 ? 1 : -1)));
    draw();
  }, {passive: false});

  enqueue(() => loadState().then(() => show(firstOpen())));
})();
