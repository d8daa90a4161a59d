// Small progressive enhancements; every page works without them.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const field = document.getElementById(button.dataset.copy);
  const status = document.getElementById("copied-" + button.dataset.copy);
  field.select();
  const done = () => { if (status) status.textContent = button.dataset.copied; };
  // The Clipboard API may be refused inside an LMS iframe; fall back to execCommand.
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(field.value).then(done, () => {
      if (document.execCommand("copy")) done();
    });
  } else if (document.execCommand("copy")) {
    done();
  }
});
