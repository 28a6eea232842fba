// Two things plain HTML does not do (the pages work without them).
document.addEventListener("DOMContentLoaded", () => {
  // A form sent back with errors: its error summary gets the focus, so that a screen
  // reader reads it and the keyboard starts from its links (each to its field).
  const summary = document.querySelector(".error-summary");
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
