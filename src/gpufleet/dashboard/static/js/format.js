// Human-readable numbers, sizes and durations for tables and chart axes.

const BYTE_UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "";
  let s = Math.max(0, Math.floor(seconds));
  const parts = [];
  for (const [unit, size] of [["d", 86400], ["h", 3600], ["m", 60]]) {
    if (s >= size) {
      parts.push(`${Math.floor(s / size)}${unit}`);
      s %= size;
    }
    if (parts.length === 2) break;
  }
  return parts.length ? parts.join(" ") : `${s}s`;
}

export function age(timestamp) {
  if (!timestamp) return "";
  return duration((Date.now() - Date.parse(timestamp)) / 1000);
}

export function when(timestamp) {
  if (!timestamp) return "";
  const date = new Date(timestamp);
  return Number.isNaN(date.getTime()) ? timestamp : date.toLocaleString();
}

export function bytes(value) {
  let size = Math.abs(value);
  let index = 0;
  while (size >= 1024 && index < BYTE_UNITS.length - 1) {
    size /= 1024;
    index += 1;
  }
  // Three significant digits without trailing zeros: 640 stays 640, 1.50 reads 1.5.
  return `${value < 0 ? "-" : ""}${Number(size.toPrecision(3))} ${BYTE_UNITS[index]}`;
}

export function number(value) {
  if (value === null || value === undefined || value === "") return "";
  const n = Number(value);
  if (!Number.isFinite(n)) return String(value);
  return Number.isInteger(n) ? n.toLocaleString() : n.toLocaleString(undefined, { maximumFractionDigits: 2 });
}

export function unitFor(metricType) {
  const type = metricType.replace(/_PER_GPU$/, "");
  if (type.endsWith("_BYTES")) return "bytes";
  if (/(UTILIZATION|ACTIVITY|OCCUPANCY)$/.test(type) || type.endsWith("_PERC")) return "%";
  if (type.endsWith("_BANDWIDTH")) return "B/s";
  if (type.endsWith("_CORES")) return "cores";
  return "";
}

export function withUnit(value, unit) {
  if (value === null || value === undefined) return "";
  if (unit === "bytes") return bytes(value);
  if (unit === "%") return `${number(value)}%`;
  return unit ? `${number(value)} ${unit}` : number(value);
}
