// The same frontend after the cutover. Two changes (README.md, "The frontend change"):
// 1. log in at authgate: POST /api/auth/login with {login, password} (a uid or an email);
// 2. when a call answers 401, refresh the session once (POST /api/auth/refresh) and retry:
//    authgate's session cookie lasts minutes, its refresh cookie days.
// Users who logged in before the cutover keep working: their old `jwt` cookie is exchanged
// for an authgate session on their first call, without a new login.
const fetchOptions = {
  mode: 'cors',
  cache: 'default',
  credentials: 'include',
  headers: { 'Content-Type': 'application/json', 'X-Requested-With': 'fetch' },
};

async function call(path, options = {}) {
  let response = await fetch(path, { ...fetchOptions, ...options });
  if (response.status === 401) {
    const refreshed = await fetch('/api/auth/refresh', { ...fetchOptions, method: 'POST' });
    if (refreshed.ok) response = await fetch(path, { ...fetchOptions, ...options });
  }
  return response;
}

document.getElementById('login').addEventListener('submit', async (event) => {
  event.preventDefault();
  const response = await fetch('/api/auth/login', {
    ...fetchOptions,
    method: 'POST',
    body: JSON.stringify({
      login: document.getElementById('uid').value,
      password: document.getElementById('password').value,
    }),
  });
  document.getElementById('message').textContent = response.ok
    ? 'Success: ' + document.getElementById('uid').value
    : 'Login error: ' + response.status;
});

document.getElementById('whoami').addEventListener('click', async () => {
  const response = await call('/api/id');
  document.getElementById('me').textContent = response.status + ' ' + (await response.text());
});
