// Signing in with an access key: POST /api/v1/token, the token then lives in sessionStorage.

import { signIn } from "../api.js";
import { h, replace } from "../dom.js";

export function renderSignIn(view, done) {
  const message = h("p", { class: "error", role: "alert", id: "signin-error" });
  const clientId = h("input", { name: "clientId", autocomplete: "username", required: true });
  const secret = h("input", {
    name: "clientSecret", type: "password", autocomplete: "current-password", required: true,
  });
  const submit = h("button", { type: "submit", class: "primary" }, "Sign in");
  const form = h("form", { class: "panel signin", id: "signin" },
    h("h1", {}, "Sign in to gpufleet"),
    h("label", {}, "Client ID", clientId),
    h("label", {}, "Client secret", secret),
    submit,
    message,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    message.textContent = "";
    try {
      await signIn(clientId.value.trim(), secret.value);
      done();
    } catch (error) {
      message.textContent = error.message;
      submit.disabled = false;
    }
  });
  replace(view, form);
  clientId.focus();
}
