/* Carnet: after django-otp-webauthn's script has registered a passkey, go where the
   server said (the backup codes the first time, else the page asked for). Signing in
   with a passkey needs nothing here: the library's script follows the server's answer. */
document.addEventListener("otp_webauthn.register_complete", function (event) {
  var answer = event.detail && event.detail.response;
  var url = answer && answer.redirect_url;
  if (typeof url === "string" && url.charAt(0) === "/" && url.charAt(1) !== "/") {
    window.location.assign(url);
  }
});
