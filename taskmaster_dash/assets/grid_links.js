/* AppLink: an AG Grid cell that links to a page of the app, as dcc.Link does: a plain click
   moves within the app (history.pushState and Dash's router), a click with a modifier key
   opens the link as the browser would. The row carries the link's address, already under the
   app's URL prefix (the server builds it); the cell's value is its text. */
(function () {
  "use strict";
  const cells = (window.dashAgGridComponentFunctions = window.dashAgGridComponentFunctions || {});
  const HREF_FIELD = "href";

  cells.AppLink = function (props) {
    const href = (props.data || {})[HREF_FIELD];
    const text = String(props.value == null ? "" : props.value);
    if (typeof href !== "string" || !href.startsWith("/")) {
      return text;
    }
    const onClick = function (event) {
      if (event.metaKey || event.shiftKey || event.altKey || event.ctrlKey || event.button !== 0) {
        return;
      }
      event.preventDefault();
      window.history.pushState({}, "", href);
      window.dispatchEvent(new CustomEvent("_dashprivate_pushstate"));
      window.scrollTo(0, 0);
    };
    return window.React.createElement("a", {href: href, onClick: onClick}, text);
  };
})();
