import { deleteJson, postJson } from './api.js';

const dialog = () => document.getElementById('sign-in');

/** Shows the sign-in form until a sign-in succeeds; resolves with the user name. */
export function signIn() {
  const form = document.getElementById('sign-in-form');
  const error = document.getElementById('sign-in-error');
  if (dialog().open) return dialog().pending;
  const pending = new Promise((resolve) => {
    form.onsubmit = async (e) => {
      e.preventDefault();
      error.hidden = true;
      try {
        const { user } = await postJson('/api/session', {
          user: form.elements.user.value,
          password: form.elements.password.value,
        });
        form.elements.password.value = '';
        dialog().close();
        resolve(user);
      } catch (err) {
        error.textContent = err.message;
        error.hidden = false;
      }
    };
  });
  dialog().pending = pending;
  // Escape would leave the page signed out with nothing to show: the form stays until it succeeds.
  dialog().oncancel = (e) => e.preventDefault();
  dialog().showModal();
  return pending;
}

export function showUser(user) {
  document.getElementById('user').textContent = user ? `signed in as ${user}` : '';
  document.getElementById('sign-out').hidden = !user;
}

export function wireSignOut() {
  document.getElementById('sign-out').onclick = async () => {
    await deleteJson('/api/session').catch(() => undefined);
    location.reload();
  };
}
