// The example frontend: where is the API? `?api=` wins; otherwise authgate.js's rule — a page on
// localhost or 127.0.0.1 talks to the local server, a deployed page to the deployed one.
const params = new URLSearchParams(location.search);
const isLocal = ['localhost', '127.0.0.1', '[::1]'].includes(location.hostname);
const API = (params.get('api') || (isLocal ? 'http://localhost:8086' : 'https://auth.example.com'))
  .replace(/\/+$/, '');

const $ = (selector) => document.querySelector(selector);
$('#api-base').textContent = API;

function problem(error) {
  $('#problem').textContent = error?.message ?? String(error);
  $('#problem').focus();
}

let auth;
try {
  // The client is served by the authgate server itself (any origin may import it).
  const { createClient } = await import(`${API}/authgate.js`);
  auth = createClient({ baseUrl: API });
} catch (error) {
  $('#status').textContent = '';
  problem(new Error(`Cannot load ${API}/authgate.js: is the authgate server running there?`));
  throw error;
}

async function show() {
  $('#problem').textContent = '';
  let user = null;
  try {
    user = await auth.me();
  } catch (error) {
    problem(error);
  }
  $('#status').textContent = user ? '' : 'Not signed in.';
  $('#login-form').hidden = Boolean(user);
  $('#signed-in').hidden = !user;
  if (user) $('#who').textContent = user.email;
}

$('#login-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const data = new FormData(event.target);
  try {
    await auth.login(data.get('login'), data.get('password'));
    await show();
  } catch (error) {
    problem(error);
  }
});

$('#call').addEventListener('click', async () => {
  try {
    const response = await auth.fetch('/api/auth/me');
    $('#result').textContent = `${response.status} ${JSON.stringify(await response.json(), null, 2)}`;
  } catch (error) {
    problem(error);
  }
});

$('#logout').addEventListener('click', async () => {
  await auth.logout().catch(problem);
  await show();
});

// "Continue with <provider>": works from any site, also with third-party cookies blocked.
auth.providers().then((providers) => {
  for (const provider of providers) {
    const button = document.createElement('button');
    button.type = 'button';
    button.textContent = `Continue with ${provider.display_name}`;
    button.addEventListener('click', () => auth.startProviderLogin(provider.name));
    $('#providers').append(button);
  }
}).catch(() => {});

let failed = null;
try {
  await auth.completeProviderLogin();  // back from a provider? collect the login
} catch (error) {
  failed = error;
}
await show();
if (failed) problem(failed);
