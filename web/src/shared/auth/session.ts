// Who is signed in, in this tab. The token lives in sessionStorage: a reload keeps it, another
// tab signs in on its own.
import { useSyncExternalStore } from "react";

export interface Me {
  tenant_id: string;
  kind: string;
  id: string | null;
  name: string;
  role: string;
  agent_id: string | null;
  permissions: string[];
}

interface State {
  token: string | null;
  me: Me | null;
  expired: boolean;
}

const KEY = "cloudcc.session";
let state: State = load();
const listeners = new Set<() => void>();

function load(): State {
  try {
    const raw = sessionStorage.getItem(KEY);
    if (raw) return { ...(JSON.parse(raw) as { token: string; me: Me }), expired: false };
  } catch {
    /* no storage: start signed out */
  }
  return { token: null, me: null, expired: false };
}

function set(next: State): void {
  state = next;
  try {
    if (next.token) sessionStorage.setItem(KEY, JSON.stringify({ token: next.token, me: next.me }));
    else sessionStorage.removeItem(KEY);
  } catch {
    /* private mode: the session lasts as long as the page */
  }
  listeners.forEach((l) => l());
}

export const session = {
  token: () => state.token,
  me: () => state.me,
  get: () => state,
  signIn(token: string, me: Me) {
    set({ token, me, expired: false });
  },
  signOut() {
    set({ token: null, me: null, expired: false });
  },
  /** The API refused the token: sign-in again; what areas keep in localStorage stays. */
  expire() {
    set({ token: null, me: null, expired: true });
  },
  subscribe(listener: () => void) {
    listeners.add(listener);
    return () => listeners.delete(listener);
  },
};

export function useSession(): State {
  return useSyncExternalStore(session.subscribe, session.get);
}

export function can(me: Me | null, permission: string): boolean {
  return !!me && me.permissions.includes(permission);
}

export type Area = "agent" | "supervisor" | "admin";

/** The areas a user sees: what the role can do (the API refuses the rest anyway). */
export function areasOf(me: Me | null): Area[] {
  const areas: Area[] = [];
  if (me?.agent_id && can(me, "calls:own")) areas.push("agent");
  if (can(me, "calls:monitor")) areas.push("supervisor");
  if (can(me, "agents:write") || can(me, "users:write")) areas.push("admin");
  return areas;
}
