import { useEffect, useState } from "react";
import { api, call } from "../shared/api/client";

export interface Code {
  code: string;
  label: string;
}

// The built-in not-ready reasons (busy: CEC 7, rest: 8, training: 9); a tenant adds its own.
export const BUILTIN_REASONS = ["busy", "rest", "training"];
// Offered as dispositions while the tenant has defined none (the API accepts any code then).
export const DEFAULT_DISPOSITIONS = ["resolved", "follow_up", "callback", "other"];

/** The tenant's reason codes (GET /reason-codes) after the built-in ones. */
export function useReasonCodes(): Code[] {
  const [codes, setCodes] = useState<Code[]>([]);
  useEffect(() => {
    call(api.GET("/api/v1/reason-codes", { params: { query: { limit: 500 } } }))
      .then((page) => setCodes(page.items.map((r) => ({ code: r.code, label: r.label }))))
      .catch(() => setCodes([]));
  }, []);
  return codes;
}

/** The tenant's disposition codes (GET /disposition-codes); null while it has none. */
export function useDispositions(): Code[] | null {
  const [codes, setCodes] = useState<Code[] | null>(null);
  useEffect(() => {
    call(api.GET("/api/v1/disposition-codes", { params: { query: { limit: 500 } } }))
      .then((page) => setCodes(page.items.length ? page.items.map((d) => ({ code: d.code, label: d.label })) : null))
      .catch(() => setCodes(null));
  }, []);
  return codes;
}
