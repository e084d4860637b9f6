"use strict";
// Sign-in: the token comes from the link's fragment (#token=..., never sent to the server) or the form.
(function () {
  const form = document.getElementById("form");
  const input = document.getElementById("token");
  const message = document.getElementById("message");

  async function signIn(token) {
    message.textContent = "Signing in ...";
    const answer = await fetch("/api/signin", {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json"}, body: JSON.stringify({token: token}),
    });
    if (answer.ok) {
      location.replace("/");
    } else {
      message.textContent = answer.status === 401 ? "Unknown token." : "Sign-in failed (" + answer.status + ").";
    }
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    signIn(input.value.trim());
  });
  const match = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (match) {
    history.replaceState(null, "", "/signin");  // the token leaves the address bar and the history
    signIn(decodeURIComponent(match[1]));
  }
})();
