// Audio behind the API's bearer token: an <audio> element cannot send it, so the page
// fetches the bytes and plays them from an object URL.
import { session } from "../shared/auth/session";

export async function audioUrl(path: string): Promise<string> {
  const token = session.token();
  const response = await fetch(path, { headers: token ? { Authorization: `Bearer ${token}` } : {} });
  if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
  return URL.createObjectURL(await response.blob());
}
