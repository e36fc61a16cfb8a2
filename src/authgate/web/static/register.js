import { $, auth, onSubmit } from './ui.js';

onSubmit($('#register-form'), async (data) => {
  const fields = Object.fromEntries(['email', 'password', 'name', 'username']
    .map((name) => [name, String(data.get(name) || '').trim()]));
  fields.password = String(data.get('password') || '');
  try {
    await auth.register(fields);
  } catch (error) {
    if (error.code === 'user_exists') error.fields = { email: error.message };
    throw error;
  }
  await auth.login(fields.email, fields.password);
  location.assign('/account');
});
