// The forms' fields, read from each job type's request schema (pydantic's JSON schema of the
// models that validate the API's requests, served in playground/config). A field the schema
// does not have is not shown; a seed option lives under "options" when the schema has an
// "options" object holding it, else at the top level, so the page follows the API as it grows.

/** Which fields each form offers, in order. "option" fields are the seed's `options` keys. */
export const FORMS = {
  "image-generation": {
    title: "Image",
    cost: "1 credit",
    fields: [
      { key: "prompt" },
      { key: "model" },
      { key: "width", option: true },
      { key: "height", option: true },
      { key: "seed", option: true },
      { key: "outputFormat", option: true },
    ],
  },
  "video-generation": {
    title: "Video",
    cost: "5 credits",
    fields: [
      { key: "prompt" },
      { key: "model" },
      { key: "imageUrls", fallback: "imageUrl" },
      { key: "duration", option: true },
      { key: "ratio", option: true },
      { key: "width", option: true },
      { key: "height", option: true },
      { key: "seed", option: true },
    ],
  },
  "image-upscale": {
    title: "Upscale",
    cost: "2 credits",
    fields: [
      { key: "imageUrl" },
      { key: "model" },
      { key: "scale" },
      { key: "faceEnhance", option: true },
    ],
  },
  "batch-generation": {
    title: "Batch",
    cost: "1 credit per image",
    fields: [
      { key: "prompts" },
      { key: "batchSize" },
      { key: "model" },
      { key: "width", option: true },
      { key: "height", option: true },
      { key: "seed", option: true },
      { key: "outputFormat", option: true },
    ],
  },
};

/** Fields every create body may carry, where the API accepts them. */
export const COMMON_FIELDS = [
  { key: "runAt" },
  { key: "priority" },
  { key: "dependsOn" },
  { key: "webhookUrl" },
  { key: "webhookEvents" },
];

const LABELS = {
  prompt: "Prompt",
  prompts: "Prompts, one per line",
  model: "Model",
  width: "Width (px)",
  height: "Height (px)",
  seed: "Seed",
  outputFormat: "Output format",
  duration: "Duration (seconds)",
  ratio: "Aspect ratio",
  imageUrls: "Source images",
  imageUrl: "Source image URL",
  scale: "Scale",
  faceEnhance: "Enhance faces",
  batchSize: "Images per task (batch size)",
  runAt: "Run at",
  priority: "Priority",
  webhookUrl: "Webhook URL",
  webhookEvents: "Webhook events",
  dependsOn: "Depends on (job ids)",
};

const HINTS = {
  prompts: "Each line is one image.",
  imageUrls: "The first image is the start frame, a second one the last frame.",
  runAt: "Leave empty to run now; your local time.",
  webhookUrl: "Called when the job finishes.",
  seed: "Same prompt and seed, same picture.",
  dependsOn: "Runs when these jobs have completed; separate ids with spaces or commas.",
  webhookEvents: "None ticked: completed, failed and cancelled.",
};

const EXAMPLES = {
  prompt: "A beautiful sunset over the sea",
  prompts: "A beautiful sunset\nA cat playing\nA mountain landscape",
};

/** The schema node behind `$ref`s and a nullable `anyOf`, with what the outer node said. */
export function plain(root, node) {
  let current = node || {};
  let nullable = false;
  const outer = { default: current.default, title: current.title, description: current.description };
  for (let depth = 0; depth < 8; depth += 1) {
    if (current.$ref) {
      const name = current.$ref.split("/").pop();
      current = (root.$defs || root.definitions || {})[name] || {};
    } else if (Array.isArray(current.anyOf) || Array.isArray(current.oneOf)) {
      const branches = current.anyOf || current.oneOf;
      nullable = nullable || branches.some((branch) => branch.type === "null");
      current = branches.find((branch) => branch.type !== "null") || {};
    } else {
      break;
    }
  }
  return {
    ...current,
    nullable,
    default: outer.default !== undefined ? outer.default : current.default,
    description: outer.description || current.description,
  };
}

function optionsObject(root) {
  const options = root.properties?.options;
  return options ? plain(root, options) : null;
}

/** Where `key` goes in a body of this schema (`options.width` or `width`), or null. */
function locate(root, key, option) {
  const options = option ? optionsObject(root) : null;
  if (options?.properties?.[key]) {
    const required = (options.required || []).includes(key);
    const node = plain(root, options.properties[key]);
    // An option left out takes the top-level spelling's default (width 1024...): shown as such.
    const fallback = root.properties?.[key] ? plain(root, root.properties[key]).default : undefined;
    return { path: `options.${key}`, node, required, fallback };
  }
  if (root.properties?.[key]) {
    const required = (root.required || []).includes(key);
    return { path: key, node: plain(root, root.properties[key]), required };
  }
  return null;
}

function kindOf(key, node) {
  if (key === "prompt") return "prompt";
  if (key === "prompts") return "prompts";
  if (key === "model") return "model";
  if (key === "imageUrl") return "image";
  if (key === "imageUrls") return "images";
  if (key === "runAt" || node.format === "date-time") return "datetime";
  if (key === "webhookUrl") return "url";
  if (key === "dependsOn") return "list";
  if (node.type === "array" && Array.isArray(node.items?.enum)) return "multi";
  if (Array.isArray(node.enum)) return "enum";
  if (node.const !== undefined) return "enum";
  if (node.type === "boolean") return "boolean";
  if (node.type === "integer" || node.type === "number") return "number";
  return "text";
}

/** The fields of one job type's form: [{key, path, kind, label, hint, node, required, ...}]. */
export function formFields(jobType) {
  const spec = FORMS[jobType.name] || { fields: [] };
  const root = jobType.schema || {};
  const fields = [];
  for (const entry of [...spec.fields, ...COMMON_FIELDS]) {
    let key = entry.key;
    let found = locate(root, key, entry.option);
    if (!found && entry.fallback) {
      key = entry.fallback;
      found = locate(root, key, entry.option);
    }
    if (!found) continue;
    const kind = kindOf(key, found.node);
    fields.push({
      key,
      path: found.path,
      kind,
      node: found.node,
      required: found.required,
      label: LABELS[key] || found.node.title || key,
      hint: HINTS[key] || found.node.description || "",
      fallback: found.fallback,
      example: EXAMPLES[key],
      enumValues:
        found.node.enum || found.node.items?.enum || (found.node.const !== undefined ? [found.node.const] : null),
      maxItems: found.node.maxItems,
    });
  }
  return fields;
}

/** `body` with `value` set at a dotted `path` (`options.width`). */
export function setPath(body, path, value) {
  const parts = path.split(".");
  let target = body;
  for (const part of parts.slice(0, -1)) {
    if (typeof target[part] !== "object" || target[part] === null) target[part] = {};
    target = target[part];
  }
  target[parts[parts.length - 1]] = value;
}
