// The seed tutorial's frontend: fetch with credentials, the backend keeps a `jwt` cookie.
const fetchOptions = {
  mode: 'cors',
  cache: 'default',
  credentials: 'include',
  headers: { 'Content-Type': 'application/json', 'X-Origin': 'client' },
};

document.getElementById('login').addEventListener('submit', async (event) => {
  event.preventDefault();
  const response = await fetch('/api/users/authenticate', {
    ...fetchOptions,
    method: 'POST',
    body: JSON.stringify({
      uid: document.getElementById('uid').value,
      password: document.getElementById('password').value,
    }),
  });
  document.getElementById('message').textContent = response.ok
    ? 'Success: ' + document.getElementById('uid').value
    : 'Login error: ' + response.status;
});

document.getElementById('whoami').addEventListener('click', async () => {
  const response = await fetch('/api/id', { ...fetchOptions, method: 'GET' });
  document.getElementById('me').textContent = response.status + ' ' + (await response.text());
});
