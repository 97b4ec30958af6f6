// What every staff page (web/pages.py) shares: a JSON call to the hotline's API that sends
// the session's CSRF token (from GET /api/me) with every request that changes something.
"use strict";

const staff = { csrfToken: "" };

async function api(method, path, body) {
  const headers = { "Accept": "application/json" };
  if (method !== "GET") headers["X-CSRF-Token"] = staff.csrfToken;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, credentials: "same-origin",
                                       body: body === undefined ? undefined : JSON.stringify(body) });
  const data = response.headers.get("Content-Type")?.includes("json") ? await response.json() : {};
  if (!response.ok) throw new Error(data.error ? data.error.message : `${response.status}`);
  if (path === "/api/me") staff.csrfToken = data.csrf_token;
  return data;
}
