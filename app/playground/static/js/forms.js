// One form per job type, built from the API's own request schema (schema.js), in a tab list.
// The API is the judge: a form sends what was typed, and a 422 is shown field by field with
// the API's own words, where the field is (a message the page cannot place goes on top).

import { ApiError, api } from "./api.js";
import { COMMON_FIELDS, FORMS, formFields, setPath } from "./schema.js";

const COMMON_KEYS = new Set(COMMON_FIELDS.map((field) => field.key));

let counter = 0;
const forms = new Map(); // job type -> {form, fields, tab, panel, alert}

function element(tag, attributes = {}, text) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    node.setAttribute(name, value === true ? "" : String(value));
  }
  if (text !== undefined) node.textContent = text;
  return node;
}

function describe(control, ids) {
  control.setAttribute("aria-describedby", ids.filter(Boolean).join(" "));
}

/** The controls of one field: returns {wrap, controls: [...], error}. */
function buildField(field, jobType, openPicker) {
  const id = `f${(counter += 1)}-${field.key}`;
  const wrap = element("div", { class: `field field-${field.kind}`, "data-path": field.path });
  const error = element("p", { id: `${id}-error`, class: "field-error", hidden: true });
  const hint = field.hint ? element("p", { id: `${id}-hint`, class: "hint" }, field.hint) : null;
  const optional = !field.required && !["model", "enum", "boolean", "multi"].includes(field.kind);
  const label = element("label", { for: id }, field.label);
  if (optional) label.append(element("small", {}, " (optional)"));
  const node = field.node;
  let controls = [];

  if (field.kind === "prompt" || field.kind === "prompts") {
    const area = element("textarea", {
      id,
      name: field.path,
      rows: field.kind === "prompts" ? 4 : 2,
      maxlength: field.kind === "prompt" ? node.maxLength : undefined,
      required: field.required,
    });
    area.value = field.example || "";
    controls = [area];
  } else if (field.kind === "model") {
    const select = element("select", { id, name: field.path });
    for (const [model, provider] of Object.entries(jobType.models || {})) {
      select.append(element("option", { value: model }, `${model} (${provider})`));
    }
    select.value = node.default ?? Object.keys(jobType.models || {})[0] ?? "";
    controls = [select];
  } else if (field.kind === "enum") {
    const select = element("select", { id, name: field.path });
    if (node.default === undefined || node.default === null) {
      const fallback = field.fallback ?? null;
      select.append(element("option", { value: "" }, fallback === null ? "default" : `${fallback} (default)`));
    }
    for (const value of field.enumValues) select.append(element("option", { value: String(value) }, String(value)));
    if (node.default !== undefined && node.default !== null) select.value = String(node.default);
    controls = [select];
  } else if (field.kind === "boolean") {
    const box = element("input", { id, name: field.path, type: "checkbox" });
    box.checked = node.default === true;
    wrap.classList.add("field-check");
    controls = [box];
  } else if (field.kind === "number") {
    const input = element("input", {
      id,
      name: field.path,
      type: "number",
      inputmode: node.type === "integer" ? "numeric" : "decimal",
      step: node.type === "integer" ? 1 : "any",
      min: node.minimum ?? node.exclusiveMinimum,
      max: node.maximum ?? node.exclusiveMaximum,
    });
    if (node.default !== undefined && node.default !== null) input.value = String(node.default);
    else if (field.fallback !== undefined && field.fallback !== null) input.placeholder = `${field.fallback} (default)`;
    controls = [input];
  } else if (field.kind === "multi") {
    const group = element("fieldset", { class: "choices", id, "aria-describedby": [hint?.id, error.id].filter(Boolean).join(" ") });
    group.append(element("legend", {}, field.label));
    for (const value of field.enumValues) {
      const boxId = `${id}-${value}`.replace(/[^A-Za-z0-9_-]/g, "-");
      const box = element("input", { id: boxId, type: "checkbox", name: field.path, value });
      const choice = element("label", { for: boxId, class: "choice" });
      choice.append(box, document.createTextNode(` ${value}`));
      group.append(choice);
      controls.push(box);
    }
    wrap.append(group);
  } else if (field.kind === "datetime") {
    controls = [element("input", { id, name: field.path, type: "datetime-local", step: 1 })];
  } else if (field.kind === "image" || field.kind === "images") {
    const count = field.kind === "images" ? Math.min(field.maxItems || 2, 2) : 1;
    const group = element("div", { class: "image-inputs" });
    for (let index = 0; index < count; index += 1) {
      const inputId = index === 0 ? id : `${id}-${index}`;
      const row = element("div", { class: "image-input" });
      const input = element("input", {
        id: inputId,
        name: field.path,
        type: "url",
        inputmode: "url",
        spellcheck: "false",
        autocomplete: "off",
        placeholder: "https://… or choose one of your results",
        "data-index": index,
      });
      if (count > 1) {
        const which = index === 0 ? "Start frame" : "Last frame";
        input.setAttribute("aria-label", `${field.label}: ${which.toLowerCase()}`);
        row.append(element("span", { class: "sub-label", "aria-hidden": "true" }, which));
      }
      const pick = element("button", { type: "button", class: "pick" }, "Choose…");
      const name = count > 1 ? `${field.label}: ${index === 0 ? "start frame" : "last frame"}` : field.label;
      pick.setAttribute("aria-label", `Choose from your results for ${name}`);
      pick.addEventListener("click", () => openPicker(input));
      row.append(input, pick);
      group.append(row);
      controls.push(input);
    }
    wrap.append(label, group);
  } else {
    const input = element("input", { id, name: field.path, type: field.kind === "url" ? "url" : "text", spellcheck: "false" });
    if (field.fallback !== undefined && field.fallback !== null) input.placeholder = `${field.fallback} (default)`;
    controls = [input];
  }
  if (field.kind !== "multi") for (const control of controls) describe(control, [hint?.id, error.id]);
  if (field.kind === "multi") {
    // The fieldset's legend names the group.
  } else if (!wrap.contains(label)) {
    if (field.kind === "boolean") wrap.append(controls[0], label);
    else wrap.append(label, ...controls);
  }
  if (hint) wrap.append(hint);
  wrap.append(error);
  return { wrap, controls, error };
}

/** The value a field sends, or undefined to send nothing (the API's default). */
function valueOf(field, controls) {
  const [first] = controls;
  switch (field.kind) {
    case "prompts": {
      const lines = first.value.split("\n").map((line) => line.trim()).filter(Boolean);
      return lines.length ? lines : undefined;
    }
    case "boolean":
      return first.checked ? true : undefined; // unticked: the API's default
    case "number": {
      if (first.value.trim() === "") return first.validity.badInput ? first.value : undefined;
      return Number(first.value);
    }
    case "enum": {
      if (first.value === "") return undefined;
      const match = field.enumValues.find((value) => String(value) === first.value);
      return match === undefined ? first.value : match;
    }
    case "datetime":
      return first.value ? new Date(first.value).toISOString() : undefined;
    case "multi": {
      const picked = controls.filter((box) => box.checked).map((box) => box.value);
      return picked.length ? picked : undefined;
    }
    case "list": {
      const ids = first.value.split(/[\s,]+/).filter(Boolean);
      return ids.length ? ids : undefined;
    }
    case "images": {
      const urls = controls.map((input) => input.value.trim()).filter(Boolean);
      return urls.length ? urls : undefined;
    }
    default: {
      const text = field.kind === "prompt" ? first.value : first.value.trim();
      return text === "" ? undefined : text;
    }
  }
}

function clearErrors(entry) {
  entry.alert.hidden = true;
  entry.alert.textContent = "";
  for (const { error, controls } of entry.fields) {
    error.hidden = true;
    error.textContent = "";
    for (const control of controls) control.removeAttribute("aria-invalid");
  }
}

/** The field an error's `field` names: exact path, else the path without `[n]`, else its head. */
function placeError(entry, name) {
  const exact = entry.fields.find((item) => item.field.path === name);
  if (exact) return { item: exact, prefix: "" };
  const indexed = /^(.+?)\[(\d+)\](.*)$/.exec(name);
  if (indexed) {
    const item = entry.fields.find((candidate) => candidate.field.path === indexed[1]);
    if (item) {
      const position = Number(indexed[2]) + 1;
      const prefix = item.field.kind === "prompts" ? `line ${position}: ` : `image ${position}: `;
      return { item, prefix, index: Number(indexed[2]) };
    }
  }
  return null;
}

function showErrors(entry, error) {
  const unplaced = [];
  let first = null;
  for (const problem of error.fields) {
    const placed = placeError(entry, problem.field);
    if (!placed) {
      unplaced.push(`${problem.field}: ${problem.message}`);
      continue;
    }
    const { item, prefix, index } = placed;
    if (entry.more.contains(item.wrap)) entry.more.open = true;
    const text = prefix + problem.message;
    item.error.textContent = item.error.textContent ? `${item.error.textContent} ${text}` : text;
    item.error.hidden = false;
    const control = item.field.kind === "images" && index !== undefined ? item.controls[index] || item.controls[0] : item.controls[0];
    control.setAttribute("aria-invalid", "true");
    first = first || control;
  }
  if (!error.fields.length) unplaced.push(error.message);
  if (unplaced.length) {
    entry.alert.textContent = unplaced.join(" · ");
    entry.alert.hidden = false;
  }
  if (first) {
    first.focus();
  } else {
    entry.alert.tabIndex = -1;
    entry.alert.focus();
  }
}

function selectTab(name, { focus = false } = {}) {
  for (const [type, entry] of forms) {
    const selected = type === name;
    entry.tab.setAttribute("aria-selected", String(selected));
    entry.tab.tabIndex = selected ? 0 : -1;
    entry.panel.hidden = !selected;
    if (selected && focus) entry.tab.focus();
  }
}

function onTabKey(event) {
  const names = [...forms.keys()];
  const at = names.indexOf(event.currentTarget.dataset.type);
  const moves = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: names.length - 1 };
  if (!(event.key in moves)) return;
  event.preventDefault();
  selectTab(names[(moves[event.key] + names.length) % names.length], { focus: true });
}

/**
 * Builds the tabs and forms. `onCreated(job, summary, title)` gets each 202's job;
 * `openPicker(input)` fills an image field from the user's results.
 */
export function buildForms(config, { onCreated, openPicker }) {
  const tabs = document.getElementById("job-tabs");
  const holder = document.getElementById("job-forms");
  tabs.replaceChildren();
  holder.replaceChildren();
  forms.clear();
  for (const jobType of config.jobTypes) {
    const spec = FORMS[jobType.name];
    if (!spec) continue;
    const tabId = `tab-${jobType.name}`;
    const panelId = `panel-${jobType.name}`;
    const tab = element("button", {
      type: "button",
      role: "tab",
      id: tabId,
      "aria-controls": panelId,
      "data-type": jobType.name,
    }, spec.title);
    tab.addEventListener("click", () => selectTab(jobType.name));
    tab.addEventListener("keydown", onTabKey);
    tabs.append(tab);

    const panel = element("div", { role: "tabpanel", id: panelId, "aria-labelledby": tabId, class: "tab-panel" });
    const form = element("form", { class: "job-form", novalidate: true, "data-type": jobType.name });
    const alert = element("p", { class: "form-error", role: "alert", hidden: true });
    const grid = element("div", { class: "form-grid" });
    const more = element("details", { class: "more" });
    more.append(element("summary", {}, "Schedule, priority, dependencies, webhook"));
    const moreGrid = element("div", { class: "form-grid" });
    more.append(moreGrid);
    const entry = { form, tab, panel, alert, fields: [], jobType, more };
    for (const field of formFields(jobType)) {
      const built = buildField(field, jobType, openPicker);
      entry.fields.push({ field, ...built });
      (COMMON_KEYS.has(field.key) ? moreGrid : grid).append(built.wrap);
    }
    const submit = element("button", { type: "submit", class: "primary" }, `Create ${spec.title.toLowerCase()} job`);
    const cost = element("span", { class: "cost" }, spec.cost);
    const actions = element("div", { class: "form-actions" });
    actions.append(submit, cost);
    form.append(alert, grid);
    if (moreGrid.children.length) form.append(more);
    form.append(actions);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearErrors(entry);
      const body = {};
      for (const { field, controls } of entry.fields) {
        const value = valueOf(field, controls);
        if (value !== undefined) setPath(body, field.path, value);
      }
      submit.disabled = true;
      form.setAttribute("aria-busy", "true");
      try {
        const job = await api.create(jobType.name, body);
        onCreated(job, summarise(jobType.name, body), spec.title);
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        if (error.status !== 401) showErrors(entry, error);
      } finally {
        submit.disabled = false;
        form.removeAttribute("aria-busy");
      }
    });
    panel.append(form);
    holder.append(panel);
    forms.set(jobType.name, entry);
  }
  selectTab(forms.keys().next().value);
}

function summarise(type, body) {
  if (type === "batch-generation") return (body.prompts || []).join(" · ");
  if (type === "image-upscale") return `×${body.scale ?? 2} upscale`;
  return body.prompt || "";
}

/** Opens `type`'s form with `value` in its `key` field (an action on a result). */
export function prefill(type, key, value) {
  const entry = forms.get(type);
  if (!entry) return;
  selectTab(type);
  clearErrors(entry);
  const item = entry.fields.find((candidate) => candidate.field.key === key)
    || entry.fields.find((candidate) => candidate.field.key === (key === "imageUrls" ? "imageUrl" : "imageUrls"));
  if (item) {
    item.controls.forEach((control, index) => { if (index > 0) control.value = ""; });
    item.controls[0].value = value;
  }
  const prompt = entry.fields.find((candidate) => candidate.field.kind === "prompt");
  const target = prompt ? prompt.controls[0] : entry.form.querySelector("button[type=submit]");
  entry.panel.scrollIntoView({ block: "start" });
  target.focus();
}
