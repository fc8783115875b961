// Requests to the console's API. The session cookie rides along by itself; a 401 means
// the sign-in is missing or expired, which the page answers by asking again.

export class UnauthorizedError extends Error {}

async function request(method, url, body) {
  const init = { method, cache: 'no-store', headers: {} };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(url, init);
  const data = await res.json().catch(() => ({}));
  if (res.status === 401) throw new UnauthorizedError(data.error || 'sign in first');
  if (!res.ok) throw new Error(data.error || `${url}: HTTP ${res.status}`);
  return data;
}

export const getJson = (url) => request('GET', url);
export const postJson = (url, body) => request('POST', url, body);
export const deleteJson = (url) => request('DELETE', url);
