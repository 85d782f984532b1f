import { describe, expect, it } from "vitest";
import { FormError, jsonProblem, RESOURCES, toBody, toForm } from "./resources";
import { fieldErrors } from "./rest";

const queues = RESOURCES.find((r) => r.key === "queues")!;
const agents = RESOURCES.find((r) => r.key === "agents")!;

describe("resource forms", () => {
  it("send on create only what was typed, typed as the API wants", () => {
    const values = { ...toForm(queues, null), name: "sales", priority: "3", required_skills: '{"en": 2}', announce_position: true };
    expect(toBody(queues, values, null)).toEqual({ name: "sales", priority: 3, required_skills: { en: 2 }, announce_position: true });
  });

  it("send on change only the fields that differ, null to clear", () => {
    const row = { id: "a1", name: "Ann", extension: "1001", email: "a@x", skills: { en: 1 }, status: "active", role: "agent" };
    const values = { ...toForm(agents, row), email: "", skills: '{"en": 5}' };
    expect(toBody(agents, values, row)).toEqual({ email: null, skills: { en: 5 } });
  });

  it("leave out the fields the role may not set", () => {
    const values = { ...toForm(agents, null), name: "B", extension: "1002", sip_password: "pw", device: "sip:b@x" };
    expect(toBody(agents, values, null, (f) => f.name !== "device")).toEqual({ name: "B", extension: "1002", sip_password: "pw" });
  });

  it("refuse bad JSON at its field", () => {
    const values = { ...toForm(queues, null), name: "q", overflow: "{nope" };
    expect(() => toBody(queues, values, null)).toThrow(FormError);
  });

  it("check a nested setting's JSON and its shape as it is typed", () => {
    const kind = { type: "json", shape: "object" } as const;
    expect(jsonProblem(kind, "")).toBeNull();
    expect(jsonProblem(kind, '{"national": false}')).toBeNull();
    expect(jsonProblem(kind, "[1]")).toEqual({ key: "form.jsonObject" });
    expect(jsonProblem(kind, "{nope")?.key).toBe("form.badJson");
    const tenant = RESOURCES.find((r) => r.key === "tenant")!;
    const row = { name: "Acme", dial_plan: { national: true, international: [], blocked: ["+881"] }, sip_destinations: [] };
    const values = { ...toForm(tenant, row), dial_plan: '{"national": false, "international": ["+44"], "blocked": ["+881"]}' };
    expect(toBody(tenant, values, row)).toEqual({ dial_plan: { national: false, international: ["+44"], blocked: ["+881"] } });
    expect(() => toBody(tenant, { ...values, dial_plan: '["+44"]' }, row)).toThrow(FormError);
  });

  it("place an RFC 9457 problem's errors at their fields", () => {
    const body = { type: "urn:cloudcc:validation", errors: [{ location: "body.priority", message: "at most 10" }, { location: "body.overflow.no_agents.target", message: "no such queue" }] };
    expect(fieldErrors(body)).toEqual({ priority: "at most 10", overflow: "no_agents.target: no such queue" });
    const two = { errors: [{ location: "body.dial_plan.international.0", message: "bad prefix" }, { location: "body.dial_plan.national", message: "not a boolean" }] };
    expect(fieldErrors(two)).toEqual({ dial_plan: "international.0: bad prefix; national: not a boolean" });
    expect(fieldErrors({ detail: "x" })).toEqual({});
  });
});
