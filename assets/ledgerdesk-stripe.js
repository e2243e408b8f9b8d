// Card capture with Stripe Elements. The card number goes from the Card Element straight to
// Stripe; our server only ever sees the resulting payment method id. Works with real Stripe.js
// and with localstripe's fake Stripe.js, which both offer the Card Element, confirmCardSetup,
// confirmSepaDebitSetup and confirmCardPayment.
window.ledgerdeskStripe = (function () {
  let stripe = null;
  let card = null;
  let mountedOn = null;

  function client(publishableKey) {
    if (!stripe) stripe = window.Stripe(publishableKey);
    return stripe;
  }

  async function waitFor(selector) {
    for (let i = 0; i < 100; i++) {
      const node = document.querySelector(selector);
      if (node) return node;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error("card form not found: " + selector);
  }

  async function mountCard(publishableKey, selector) {
    const node = await waitFor(selector);
    if (card && mountedOn === node) return true;
    if (card) card.destroy();
    card = client(publishableKey).elements().create("card", { hidePostalCode: false });
    card.mount(node);
    mountedOn = node;
    return true;
  }

  function errorMessage(error) {
    if (!error) return "";
    return error.message || String(error);
  }

  async function confirmSetup(publishableKey, clientSecret, holderName) {
    if (!card) return { ok: false, error: "The card form is not ready yet." };
    const result = await client(publishableKey).confirmCardSetup(clientSecret, {
      payment_method: { card: card, billing_details: { name: holderName } },
    });
    if (result.error) return { ok: false, error: errorMessage(result.error) };
    const pm = result.setupIntent.payment_method;
    return { ok: true, payment_method: typeof pm === "string" ? pm : pm.id };
  }

  // The IBAN was checked by our server before the SetupIntent was made; Stripe keeps it.
  async function confirmSepaSetup(publishableKey, clientSecret, account) {
    const result = await client(publishableKey).confirmSepaDebitSetup(clientSecret, {
      payment_method: {
        sepa_debit: { iban: account.iban },
        billing_details: { name: account.name, email: account.email },
      },
    });
    if (result.error) return { ok: false, error: errorMessage(result.error) };
    const pm = result.setupIntent.payment_method;
    return { ok: true, payment_method: typeof pm === "string" ? pm : pm.id };
  }

  async function confirmPayment(publishableKey, clientSecret) {
    const result = await client(publishableKey).confirmCardPayment(clientSecret);
    if (result.error) return { ok: false, error: errorMessage(result.error) };
    return { ok: true, payment_intent: result.paymentIntent.id, status: result.paymentIntent.status };
  }

  return { mountCard, confirmSetup, confirmSepaSetup, confirmPayment };
})();
