// The indexes: a list with documents, splits, bytes on storage and time range, and one
// index's page with its config, its splits and a delete button.

import { describeError } from "../api.js";
import { element, clear, table } from "../dom.js";
import { formatBytes, formatCount } from "../lib/format.js";
import { formatTimestamp, timestampMs } from "../lib/time.js";
import { toYaml } from "../lib/yaml.js";

function timeRange(min, max) {
  if (min == null || max == null) return "—";
  return `${formatTimestamp(timestampMs(min))} → ${formatTimestamp(timestampMs(max))}`;
}

function link(href, text) {
  return element("a", { href, "data-nav": "" }, text);
}

export class IndexesPage {
  constructor(root, api, navigate) {
    this.root = root;
    this.api = api;
    this.navigate = navigate;
  }

  destroy() {}

  async show() {
    clear(this.root);
    const heading = element("h1", {}, "Indexes");
    const status = element("p", { class: "muted", role: "status" }, "Loading…");
    this.root.append(heading, status);
    try {
      const indexes = await this.api.get("/api/v1/indexes");
      const ids = indexes.map((index) => index.index_config.index_id).sort();
      const descriptions = await Promise.all(ids.map((id) =>
        this.api.get(`/api/v1/indexes/${encodeURIComponent(id)}`).catch((error) => ({ index_id: id, error }))));
      status.remove();
      if (descriptions.length === 0) {
        this.root.append(element("p", {}, "No index yet. Create one with `quarry index create --index-config <file>` or POST /api/v1/indexes."));
        return;
      }
      const rows = descriptions.map((description) => description.error
        ? [link(`/ui/indexes/${encodeURIComponent(description.index_id)}`, description.index_id), describeError(description.error), "", "", ""]
        : [
          link(`/ui/indexes/${encodeURIComponent(description.index_id)}`, description.index_id),
          formatCount(description.num_published_docs),
          formatCount(description.num_published_splits),
          formatBytes(description.size_published_splits_bytes),
          timeRange(description.min_timestamp, description.max_timestamp),
        ]);
      this.root.append(table("Indexes", ["Index", "Documents", "Splits", "On storage", "Time range"], rows));
    } catch (error) {
      status.textContent = describeError(error);
      status.className = "error-box";
    }
  }
}

export class IndexPage {
  constructor(root, api, navigate, indexId) {
    this.root = root;
    this.api = api;
    this.navigate = navigate;
    this.indexId = indexId;
  }

  destroy() {}

  async show() {
    clear(this.root);
    const id = this.indexId;
    const status = element("p", { class: "muted", role: "status" }, "Loading…");
    this.root.append(element("p", {}, link("/ui/indexes", "← Indexes")), element("h1", {}, id), status);
    try {
      const path = `/api/v1/indexes/${encodeURIComponent(id)}`;
      const [description, splitList] = await Promise.all([this.api.get(path), this.api.get(`${path}/splits`)]);
      const splits = splitList.splits;
      status.remove();
      const searchLink = link(`/ui/?index=${encodeURIComponent(id)}`, "Search this index");
      this.root.append(element("dl", { class: "facts" },
        element("dt", {}, "Documents"), element("dd", {}, formatCount(description.num_published_docs)),
        element("dt", {}, "Splits"), element("dd", {}, formatCount(description.num_published_splits)),
        element("dt", {}, "On storage"), element("dd", {}, formatBytes(description.size_published_splits_bytes)),
        element("dt", {}, "Uncompressed"), element("dd", {}, formatBytes(description.size_published_docs_uncompressed_bytes)),
        element("dt", {}, "Time range"), element("dd", {}, timeRange(description.min_timestamp, description.max_timestamp)),
        element("dt", {}, "Created"), element("dd", {}, formatTimestamp(timestampMs(description.create_timestamp))),
        element("dt", {}, "Location"), element("dd", {}, element("code", {}, description.index_uri)),
      ), element("p", {}, searchLink));

      this.root.append(element("h2", {}, "Config"),
        element("pre", { class: "config", id: "index-config" }, toYaml(description.index_config)));

      const rows = splits.map((split) => {
        const metadata = split.split_metadata ?? split;
        const range = metadata.time_range;
        return [
          element("code", {}, metadata.split_id),
          split.split_state ?? "",
          formatCount(metadata.num_docs),
          formatBytes(metadata.file_size_bytes),
          range ? timeRange(range.start ?? range[0], range.end ?? range[1]) : "—",
          String(metadata.num_merge_ops ?? 0),
        ];
      });
      this.root.append(element("h2", {}, `Splits (${splits.length})`),
        table("Splits", ["Split", "State", "Documents", "Size", "Time range", "Merges"], rows));
      this.root.append(this.deleteSection(id));
    } catch (error) {
      status.textContent = describeError(error);
      status.className = "error-box";
    }
  }

  /** Deleting needs the index's name typed again, as a confirmation that cannot be
   * clicked through by accident. */
  deleteSection(id) {
    const section = element("section", { class: "danger" }, element("h2", {}, "Delete this index"));
    const open = element("button", { type: "button", class: "danger-button", id: "delete-index" }, "Delete index…");
    const dialog = element("dialog", { id: "delete-dialog", "aria-labelledby": "delete-title" });
    const input = element("input", { id: "delete-confirm", autocomplete: "off", spellcheck: "false" });
    const confirm = element("button", { type: "submit", class: "danger-button", disabled: "" }, "Delete");
    const cancel = element("button", { type: "button" }, "Cancel");
    const message = element("p", { class: "error-box", hidden: "" });
    const form = element("form", { method: "dialog" },
      element("h2", { id: "delete-title" }, `Delete ${id}?`),
      element("p", {}, "Its splits and documents are deleted from storage. This cannot be undone."),
      element("label", { for: "delete-confirm" }, `Type ${id} to confirm`), input, message,
      element("div", { class: "buttons" }, cancel, confirm));
    dialog.append(form);
    input.addEventListener("input", () => {
      confirm.disabled = input.value !== id;
    });
    cancel.addEventListener("click", () => dialog.close());
    open.addEventListener("click", () => {
      input.value = "";
      confirm.disabled = true;
      message.hidden = true;
      dialog.showModal();
      input.focus();
    });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (input.value !== id) return;
      confirm.disabled = true;
      try {
        await this.api.delete(`/api/v1/indexes/${encodeURIComponent(id)}`);
        dialog.close();
        this.navigate("/ui/indexes");
      } catch (error) {
        message.textContent = describeError(error);
        message.hidden = false;
        confirm.disabled = false;
      }
    });
    section.append(element("p", {}, "Deletes the index, its splits and its documents."), open, dialog);
    return section;
  }
}
