import { describe, expect, it } from "vitest";
import { matches } from "./stream";

describe("event type patterns", () => {
  it("matches exact types and prefixes", () => {
    expect(matches("contact.*", "contact.offered")).toBe(true);
    expect(matches("contact.*", "agent.state_changed")).toBe(false);
    expect(matches("agent.state_changed", "agent.state_changed")).toBe(true);
    expect(matches("*", "queue.updated")).toBe(true);
  });
});
