// The API client: types generated from the node's /api/openapi.json (npm run gen:api), a thin
// fetch wrapper (openapi-fetch). No hand-written request or response shapes.
import createClient, { type Middleware } from "openapi-fetch";
import type { components, paths } from "./schema";
import { session } from "../auth/session";

export type Schemas = components["schemas"];

/** An RFC 9457 problem from the API, thrown by `call`. */
export class ApiProblem extends Error {
  constructor(
    readonly status: number,
    readonly detail: string,
    readonly body: unknown,
  ) {
    super(detail);
  }
}

const auth: Middleware = {
  onRequest({ request }) {
    const token = session.token();
    if (token) request.headers.set("Authorization", `Bearer ${token}`);
    return request;
  },
  onResponse({ response }) {
    // An expired or revoked token: back to sign-in (drafts are kept, see session.expire).
    if (response.status === 401 && session.token()) session.expire();
    return response;
  },
};

export const api = createClient<paths>({ baseUrl: "" });
api.use(auth);

/** Unwrap an openapi-fetch result: the data, or an ApiProblem with the API's own sentence. */
export async function call<T>(pending: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const { data, error, response } = await pending;
  if (error !== undefined || !response.ok) {
    const detail =
      typeof error === "object" && error !== null && "detail" in error ? String((error as { detail: unknown }).detail) : response.statusText;
    throw new ApiProblem(response.status, detail, error);
  }
  return data as T;
}
