// Stripe Elements for one payment. The card number goes from this page to Stripe (or
// localstripe in TEST MODE); Barid's server only receives the payment method id.
(function () {
  "use strict";
  const form = document.getElementById("card-form");
  if (!form || typeof Stripe === "undefined") { return; }
  const d = form.dataset;
  const stripe = Stripe(d.key);
  const elements = stripe.elements();
  const card = elements.create("card");
  card.mount("#card-element");
  const errors = document.getElementById("card-errors");
  const button = document.getElementById("card-pay");

  async function post(paymentMethod) {
    const res = await fetch(d.confirm, {
      method: "POST",
      headers: {"Content-Type": "application/json", "X-CSRFToken": d.csrf},
      body: JSON.stringify({payment_method: paymentMethod}),
      credentials: "same-origin",
    });
    return res.json();
  }

  form.addEventListener("submit", async function (ev) {
    ev.preventDefault();
    button.disabled = true;
    errors.textContent = "";
    try {
      let outcome;
      if (d.testMode === "true") {
        // localstripe's Stripe.js tokenises the card; the server attaches and confirms.
        const {token, error} = await stripe.createToken(card);
        if (error) { throw new Error(error.message || d.error); }
        outcome = await post(token.card.id);
        if (outcome.status === "requires_action") {
          const auth = await stripe.confirmCardPayment(outcome.client_secret);
          if (auth.error) { throw new Error(auth.error.message || d.error); }
        }
      } else {
        const {error} = await stripe.confirmCardPayment(d.secret, {payment_method: {card: card}});
        if (error) { throw new Error(error.message || d.error); }
        outcome = {status: "processing"};
      }
      if (outcome.status === "failed" || outcome.status === "error") {
        throw new Error(outcome.message || d.error);
      }
      window.location.assign(d.result);
    } catch (err) {
      errors.textContent = (err && err.message) || d.error;
      button.disabled = false;
    }
  });
})();
