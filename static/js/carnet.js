// What plain HTML does not do (the pages work without it).
document.addEventListener("DOMContentLoaded", () => {
  // A form sent back with errors: its error summary gets the focus, so that a screen
  // reader reads it and the keyboard starts from its links (each to its field). So does
  // what a form's answer asks to be read first (the records that may be the same person).
  const summary = document.querySelector(".error-summary, [data-takes-focus]");
  if (summary) {
    summary.focus();
  }
});

// Escape closes the phone's menu (a disclosure) and gives the focus back to its button.
document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape") {
    return;
  }
  const menu = document.querySelector("details.site-menu[open]");
  if (menu) {
    menu.open = false;
    menu.querySelector("summary").focus();
  }
});

// A reply template is added to the draft in place (without the script, the server does
// it and sends the page back): nothing typed is lost, nothing is sent.
document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-adds-template]");
  if (!button) {
    return;
  }
  const select = button.form.querySelector("select[name=template]");
  const body = document.getElementById(button.dataset.addsTemplate);
  const option = select && select.selectedOptions[0];
  if (!body || !option || option.dataset.body === undefined) {
    return;
  }
  event.preventDefault();
  const draft = body.value.trimEnd();
  body.value = draft ? `${draft}\n\n${option.dataset.body}` : option.dataset.body;
  body.focus();
  body.setSelectionRange(body.value.length, body.value.length);
});

// A conversation's management forms (assign, close, keep from the representatives) send
// the reply being written along: the server puts it back in the reply box.
document.addEventListener("submit", (event) => {
  const form = event.target;
  const body = form.dataset.keepsDraft && document.getElementById(form.dataset.keepsDraft);
  if (body && form.elements.draft) {
    form.elements.draft.value = body.value;
  }
});
