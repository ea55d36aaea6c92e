// The log-volume histogram: stacked bars on a canvas, drawn by our code. Dragging across it
// zooms to the dragged range; clicking a bar narrows to that bucket.

import { formatCount } from "./lib/format.js";
import { formatTimestamp } from "./lib/time.js";
import { OTHER_SERIES } from "./lib/histogram_data.js";

const SERIES_COLORS = {
  "sev-fatal": "--sev-fatal",
  "sev-error": "--sev-error",
  "sev-warn": "--sev-warn",
  "sev-info": "--sev-info",
  "sev-debug": "--sev-debug",
  "sev-other": "--sev-other",
};
const AXIS_HEIGHT = 18;
const CLICK_SLOP_PX = 4;

export class Histogram {
  /** `severityClass` maps a series name to its colour class; `onRange(fromMs, toMs)` is
   * called for a drag or a click on a bar. */
  constructor(canvas, { severityClass, onRange }) {
    this.canvas = canvas;
    this.severityClass = severityClass;
    this.onRange = onRange;
    this.data = { buckets: [], series: [] };
    this.fromMs = 0;
    this.toMs = 1;
    this.drag = null;
    canvas.addEventListener("pointerdown", (event) => this.pointerDown(event));
    canvas.addEventListener("pointermove", (event) => this.pointerMove(event));
    canvas.addEventListener("pointerup", (event) => this.pointerUp(event));
    canvas.addEventListener("pointerleave", () => {
      if (!this.drag) this.canvas.title = "";
    });
    new ResizeObserver(() => this.draw()).observe(canvas);
  }

  setData(data, fromMs, toMs) {
    this.data = data;
    this.fromMs = fromMs;
    this.toMs = Math.max(toMs, fromMs + 1);
    this.draw();
  }

  timeAt(x) {
    const width = this.canvas.clientWidth || 1;
    const clamped = Math.min(Math.max(x, 0), width);
    return this.fromMs + (clamped / width) * (this.toMs - this.fromMs);
  }

  xOf(ms) {
    const width = this.canvas.clientWidth || 1;
    return ((ms - this.fromMs) / (this.toMs - this.fromMs)) * width;
  }

  localX(event) {
    return event.clientX - this.canvas.getBoundingClientRect().left;
  }

  bucketAt(x) {
    const time = this.timeAt(x);
    return this.data.buckets.find((bucket) => bucket.start <= time && time < bucket.end);
  }

  pointerDown(event) {
    if (event.button !== 0) return;
    this.canvas.setPointerCapture(event.pointerId);
    this.drag = { startX: this.localX(event), x: this.localX(event) };
  }

  pointerMove(event) {
    const x = this.localX(event);
    if (this.drag) {
      this.drag.x = x;
      this.draw();
      return;
    }
    const bucket = this.bucketAt(x);
    this.canvas.title = bucket
      ? `${formatTimestamp(bucket.start)}: ${formatCount(bucket.total)} logs` +
        Object.entries(bucket.counts).map(([series, count]) => `\n${series}: ${formatCount(count)}`).join("")
      : "";
  }

  pointerUp(event) {
    if (!this.drag) return;
    const { startX } = this.drag;
    const x = this.localX(event);
    this.drag = null;
    this.draw();
    if (Math.abs(x - startX) >= CLICK_SLOP_PX) {
      const from = this.timeAt(Math.min(startX, x));
      const to = this.timeAt(Math.max(startX, x));
      this.onRange(Math.floor(from / 1000) * 1000, Math.ceil(to / 1000) * 1000);
      return;
    }
    const bucket = this.bucketAt(x);
    if (bucket && bucket.total > 0) this.onRange(bucket.start, bucket.end);
  }

  colorOf(series, style) {
    const cssClass = series === OTHER_SERIES ? "sev-other" : this.severityClass(series);
    return style.getPropertyValue(SERIES_COLORS[cssClass] ?? "--sev-other").trim() || "#888";
  }

  draw() {
    const canvas = this.canvas;
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth;
    const height = canvas.clientHeight;
    if (width === 0 || height === 0) return;
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    const context = canvas.getContext("2d");
    context.setTransform(ratio, 0, 0, ratio, 0, 0);
    context.clearRect(0, 0, width, height);
    const style = getComputedStyle(canvas);
    const plotHeight = height - AXIS_HEIGHT;
    const max = Math.max(1, ...this.data.buckets.map((bucket) => bucket.total));
    for (const bucket of this.data.buckets) {
      const left = this.xOf(bucket.start);
      const barWidth = Math.max(1, this.xOf(bucket.end) - left - 1);
      let y = plotHeight;
      // Largest series at the bottom, as in the legend.
      for (const series of this.data.series) {
        const count = bucket.counts[series] ?? 0;
        if (count === 0) continue;
        const barHeight = (count / max) * (plotHeight - 4);
        context.fillStyle = this.colorOf(series, style);
        context.fillRect(left, y - barHeight, barWidth, barHeight);
        y -= barHeight;
      }
    }
    // No data (a failed search): no axis either, whose labels would read 1970.
    if (this.data.buckets.length > 0) this.drawAxis(context, style, width, plotHeight);
    if (this.drag) {
      const left = Math.min(this.drag.startX, this.drag.x);
      context.fillStyle = style.getPropertyValue("--selection").trim() || "rgba(80,140,255,0.25)";
      context.fillRect(left, 0, Math.abs(this.drag.x - this.drag.startX), plotHeight);
    }
  }

  drawAxis(context, style, width, plotHeight) {
    context.strokeStyle = style.getPropertyValue("--border").trim() || "#ccc";
    context.beginPath();
    context.moveTo(0, plotHeight + 0.5);
    context.lineTo(width, plotHeight + 0.5);
    context.stroke();
    context.fillStyle = style.getPropertyValue("--muted").trim() || "#666";
    context.font = "11px system-ui, sans-serif";
    context.textBaseline = "top";
    const labels = Math.max(2, Math.floor(width / 160));
    const sameDay = new Date(this.fromMs).toDateString() === new Date(this.toMs).toDateString();
    for (let i = 0; i < labels; i += 1) {
      const time = this.fromMs + ((i + 0.5) / labels) * (this.toMs - this.fromMs);
      const text = sameDay ? formatTimestamp(time).slice(11, 19) : formatTimestamp(time).slice(5, 16);
      const x = this.xOf(time);
      context.fillText(text, Math.min(Math.max(x - 24, 0), width - 60), plotHeight + 4);
    }
  }
}
