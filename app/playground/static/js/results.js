// Results: images in a grid that opens each one full size, animated results playing where
// they are (an animated WebP plays as an image; an MP4 or WebM in a muted, looping video), a
// batch's images as one set; and the picker that fills an image field with one of them.

const VIDEO_FILE = /\.(mp4|webm|mov|m4v)(\?|#|$)/i;
const IMAGE_TYPES = new Set(["image-generation", "image-upscale", "batch-generation"]);
const TYPE_NAMES = {
  "image-generation": "image",
  "video-generation": "video",
  "image-upscale": "upscale",
  "batch-generation": "batch",
};

export function resultUrls(job) {
  if (Array.isArray(job.resultUrls) && job.resultUrls.length) return job.resultUrls;
  return job.resultUrl ? [job.resultUrl] : [];
}

export function isVideoFile(url) {
  try {
    return VIDEO_FILE.test(new URL(url, document.baseURI).pathname);
  } catch {
    return false;
  }
}

function button(text, label, onClick) {
  const node = document.createElement("button");
  node.type = "button";
  node.textContent = text;
  if (label) node.setAttribute("aria-label", label);
  node.addEventListener("click", onClick);
  return node;
}

/** A job's results as a list; `actions.upscale(url)` / `actions.animate(url)` on images. */
export function renderResults(job, actions) {
  const urls = resultUrls(job);
  const list = document.createElement("ul");
  list.className = urls.length > 1 ? "result-grid result-set" : "result-grid";
  const kind = TYPE_NAMES[job.type] || "job";
  list.setAttribute("aria-label", urls.length > 1 ? `${urls.length} results of this batch` : "Result");
  urls.forEach((url, index) => {
    const item = document.createElement("li");
    item.className = "result";
    const name = urls.length > 1 ? `result ${index + 1} of ${urls.length}` : "result";
    if (isVideoFile(url)) {
      const video = document.createElement("video");
      Object.assign(video, { src: url, autoplay: true, loop: true, muted: true, controls: true, playsInline: true });
      video.setAttribute("aria-label", `Video ${name}`);
      item.append(video);
    } else {
      const open = document.createElement("button");
      open.type = "button";
      open.className = "thumb";
      open.setAttribute("aria-label", `Open ${kind} ${name} full size`);
      const image = document.createElement("img");
      image.src = url;
      image.alt = job.type === "video-generation" ? `Animated ${name}` : `Image ${name}`;
      image.decoding = "async";
      open.append(image);
      open.addEventListener("click", () => openViewer(url, image.alt));
      item.append(open);
      if (IMAGE_TYPES.has(job.type)) {
        const tools = document.createElement("div");
        tools.className = "result-actions";
        const which = urls.length > 1 ? ` ${index + 1}` : "";
        tools.append(
          button("Upscale", `Upscale ${kind} result${which}`, () => actions.upscale(url)),
          button("Animate", `Animate ${kind} result${which}`, () => actions.animate(url)),
        );
        item.append(tools);
      }
    }
    list.append(item);
  });
  return list;
}

let returnFocus = null;

export function openViewer(url, alt) {
  const dialog = document.getElementById("viewer");
  const body = document.getElementById("viewer-body");
  const image = document.createElement("img");
  image.src = url;
  image.alt = alt;
  image.className = "full";
  body.replaceChildren(image);
  document.getElementById("viewer-open").href = url;
  returnFocus = document.activeElement;
  dialog.showModal();
  document.getElementById("viewer-close").focus();
}

/** Wires the two dialogs; `imageResults()` lists the user's image results for the picker. */
export function setUpDialogs(imageResults) {
  const viewer = document.getElementById("viewer");
  document.getElementById("viewer-close").addEventListener("click", () => viewer.close());
  viewer.addEventListener("close", () => {
    document.getElementById("viewer-body").replaceChildren();
    returnFocus?.focus?.();
  });
  viewer.addEventListener("click", (event) => {
    if (event.target === viewer) viewer.close(); // a click on the backdrop
  });

  const picker = document.getElementById("picker");
  let target = null;
  document.getElementById("picker-close").addEventListener("click", () => picker.close());
  picker.addEventListener("close", () => target?.focus());
  return function openPicker(input) {
    target = input;
    const list = document.getElementById("picker-list");
    const results = imageResults();
    list.replaceChildren();
    document.getElementById("picker-empty").hidden = results.length > 0;
    results.forEach(({ url, label }) => {
      const item = document.createElement("li");
      const choose = document.createElement("button");
      choose.type = "button";
      choose.className = "thumb";
      choose.setAttribute("aria-label", `Use ${label}`);
      const image = document.createElement("img");
      image.src = url;
      image.alt = "";
      choose.append(image);
      choose.addEventListener("click", () => {
        input.value = url;
        input.dispatchEvent(new Event("input", { bubbles: true }));
        picker.close();
      });
      item.append(choose);
      list.append(item);
    });
    picker.showModal();
    (list.querySelector("button") || document.getElementById("picker-close")).focus();
  };
}

export { IMAGE_TYPES, TYPE_NAMES };
