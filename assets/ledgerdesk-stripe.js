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
    if (card._inputs) fixLocalstripeInputs(card._inputs);
    return true;
  }

  // localstripe's stand-in Card Element (development and tests) names its inputs by field,
  // two characters wide, and reads the year as "20" + what is typed, jumping to the CVC after
  // "20": a four-digit year could not be typed. Readable placeholders and labels, and a year
  // typed with four digits is kept as its last two. Real Stripe's element does all this itself.
  const LOCALSTRIPE_FIELDS = {
    number: ["Card number", 19],
    exp_month: ["MM", 4],
    exp_year: ["YY", 5],
    cvc: ["CVC", 5],
    postal_code: ["ZIP", 8],
  };
  const LOCALSTRIPE_LABELS = {
    number: "Card number",
    exp_month: "Expiry month",
    exp_year: "Expiry year",
    cvc: "CVC",
    postal_code: "Postal code",
  };

  function fixLocalstripeInputs(inputs) {
    Object.entries(LOCALSTRIPE_FIELDS).forEach(([name, [placeholder, size]]) => {
      const input = inputs[name];
      if (!input) return;
      input.setAttribute("placeholder", placeholder);
      input.setAttribute("size", String(size));
      input.setAttribute("aria-label", LOCALSTRIPE_LABELS[name]);
      input.setAttribute("inputmode", "numeric");
    });
    const year = inputs.exp_year;
    const changed = year.oninput;
    year.setAttribute("maxlength", "4");
    year.oninput = () => {
      if (/^\d{4}$/.test(year.value)) year.value = year.value.slice(2);
      // "20" may be the start of 2029: only a finished year moves on to the CVC.
      const finished = year.value.length === 2 && year.value !== "20";
      changed({ target: finished ? year : null });
    };
  }

  // localstripe's element has no value until something is typed, and reading it then fails
  // with "Cannot read properties of undefined"; say what is missing instead.
  function localstripeCardMissing() {
    if (!card._inputs) return "";
    const value = card.value && card.value.card;
    if (!value || !value.number) return "Enter the card number.";
    if (!value.exp_month || !card._inputs.exp_year.value) return "Enter the card's expiry month and year.";
    if (!value.cvc) return "Enter the card's CVC.";
    return "";
  }

  function errorMessage(error) {
    if (!error) return "";
    return error.message || String(error);
  }

  async function confirmSetup(publishableKey, clientSecret, holderName) {
    if (!card) return { ok: false, error: "The card form is not ready yet." };
    const missing = localstripeCardMissing();
    if (missing) return { ok: false, error: missing };
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
