// The admin console's generic access to the API's resources. The typed client
// (shared/api/client.ts) needs literal paths; the console walks ~15 resources from one
// description each, so it speaks to them through this small fetch wrapper with the same
// token, the same 401 rule and the same RFC 9457 problems.
import { ApiProblem } from "../shared/api/client";
import { session } from "../shared/auth/session";

export interface Page<T> {
  items: T[];
  total: number;
  limit: number;
  offset: number;
}

export type Row = Record<string, unknown>;

/** The field a problem's error points at: `body.overflow.no_agents.target` -> `overflow`, with
 * the place inside a nested setting before the message (`no_agents.target: ...`); several
 * errors of one field are joined. */
export function fieldErrors(body: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (typeof body !== "object" || body === null) return out;
  const errors = (body as { errors?: unknown }).errors;
  if (!Array.isArray(errors)) return out;
  for (const e of errors as { location?: string; field?: string; message?: string }[]) {
    const [field, ...inside] = (e.location ?? e.field ?? "").split(".").filter((p) => p !== "body" && p !== "");
    if (!field) continue;
    const message = (inside.length ? `${inside.join(".")}: ` : "") + String(e.message ?? "");
    out[field] = out[field] ? `${out[field]}; ${message}` : message;
  }
  return out;
}

export async function request<T>(method: string, path: string, body?: unknown, raw?: BodyInit, contentType?: string): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json, application/problem+json" };
  const token = session.token();
  if (token) headers.Authorization = `Bearer ${token}`;
  let payload: BodyInit | undefined = raw;
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  } else if (contentType) headers["Content-Type"] = contentType;
  const response = await fetch(path, { method, headers, body: payload });
  if (response.status === 401 && session.token()) session.expire();
  const text = await response.text();
  let data: unknown = undefined;
  try {
    data = text ? JSON.parse(text) : undefined;
  } catch {
    data = text;
  }
  if (!response.ok) {
    const detail =
      typeof data === "object" && data !== null && "detail" in data ? String((data as { detail: unknown }).detail) : response.statusText;
    throw new ApiProblem(response.status, detail, data);
  }
  return data as T;
}

export function list<T = Row>(path: string, params: Record<string, string | number | undefined>): Promise<Page<T>> {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== "") q.set(k, String(v));
  return request<Page<T>>("GET", `${path}?${q.toString()}`);
}
