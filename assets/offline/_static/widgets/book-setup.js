// Written for this book (MIT licence); loaded after require.js and before embed-amd.js.
(function () {
  // 1. The widget manager loads its icon fonts from "<its RequireJS module folder>/";
  //    unconfigured, RequireJS puts that folder beside each page and the fonts 404.
  //    Point the module folder at this directory, where the fonts are shipped.
  var here = document.currentScript.src;
  require.config({
    paths: {"@jupyter-widgets/html-manager/dist": here.slice(0, here.lastIndexOf("/"))}
  });

  // 2. Widget labels are typeset with the MathJax 2 call MathJax.Hub.Queue, but the book
  //    ships MathJax 3, which has no Hub: the page threw a TypeError for every label.
  //    Forward that call to MathJax 3's typesetPromise once MathJax has started.
  document.addEventListener("DOMContentLoaded", function () {
    var mj = window.MathJax;
    if (!mj || mj.Hub) return;
    mj.Hub = {
      Queue: function (job) {
        var element = job && job[2];
        var ready = mj.startup && mj.startup.promise ? mj.startup.promise : Promise.resolve();
        ready.then(function () {
          if (element && mj.typesetPromise) return mj.typesetPromise([element]);
        });
      }
    };
  });
})();
