import { useEffect, useState } from "react";

/** Now in epoch seconds, re-rendering every ``ms`` (timers in the page). */
export function useNow(ms = 1000): number {
  const [now, setNow] = useState(() => Date.now() / 1000);
  useEffect(() => {
    const id = setInterval(() => setNow(Date.now() / 1000), ms);
    return () => clearInterval(id);
  }, [ms]);
  return now;
}

/** Epoch seconds of an API time (ISO 8601 with its zone, docs/events.md); ``fallback`` when absent. */
export function epochSeconds(value: unknown, fallback: number): number {
  if (typeof value === "number") return value;
  if (typeof value === "string") {
    const ms = Date.parse(value);
    if (!Number.isNaN(ms)) return ms / 1000;
  }
  return fallback;
}
