// What every built-in page shares: the viewport and icon tags, and the header with the navigation.
// A page's <head> has its charset, title, the stylesheet and this script; nothing else is repeated.
// It lives under /console/ because the API port serves only /console/ (and the console uses it there).
(function () {
  "use strict";
  var LINKS = [
    ["/", "Home"],
    ["/console/", "Console"],
    ["/players/", "Player"],
    ["/players/whip.html", "WHIP publisher"],
    ["/players/latency.html", "Latency"],
  ];

  function meta(name, content) {
    var m = document.createElement("meta");
    m.name = name;
    m.content = content;
    document.head.appendChild(m);
  }
  meta("viewport", "width=device-width, initial-scale=1");
  var icon = document.createElement("link");
  icon.rel = "icon";
  icon.href = "data:,"; // no /favicon.ico request
  document.head.appendChild(icon);

  function samePage(href) {
    var path = window.location.pathname.replace(/index\.html$/, "");
    return path === href;
  }

  // <header>: the brand, the links (class "pages": the console points them at the HTTP server when
  // it runs on the API port; the current page's has class "here") and a #version slot on the right.
  function header() {
    var h = document.createElement("header");
    var brand = document.createElement("span");
    brand.className = "brand";
    brand.textContent = "srs-twisted";
    h.appendChild(brand);
    LINKS.forEach(function (link) {
      var a = document.createElement("a");
      a.href = link[0];
      a.textContent = link[1];
      a.className = samePage(link[0]) ? "here" : "pages";
      h.appendChild(a);
    });
    var version = document.createElement("span");
    version.className = "right";
    version.id = "version";
    h.appendChild(version);
    document.body.insertBefore(h, document.body.firstChild);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", header);
  else header();
})();
