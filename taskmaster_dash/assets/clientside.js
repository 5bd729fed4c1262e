// Browser-side callbacks of the pages, named by ClientsideFunction(namespace, name) in Python.
// Kept in a file (not inline strings) so they are read, linted and cached like any script.
window.dash_clientside = window.dash_clientside || {};

// The infinite grids (pages/_ui.py refresh_grid_on).
window.dash_clientside.grid = {
  // After a server-side change or a new external filter: drop the grid's cached blocks so it
  // asks the server again. The last argument is the grid's id; the others only trigger.
  purge: function (...args) {
    const gridId = args[args.length - 1];
    try {
      window.dash_ag_grid.getApi(gridId).purgeInfiniteCache();
    } catch (e) {
      // the grid is not mounted (yet): it asks the server anyway when it is
    }
    return Date.now();
  },
};

// The triage list under the error charts (pages/_error_triage.py).
window.dash_clientside.triage = {
  // A change made in the side panel refreshes the list: pass the change on to its store.
  refreshOnChange: function (changed) {
    return changed;
  },
};

// The view in the address bar (pages/_timerange.py).
window.dash_clientside.view = {
  // The server wrote a query string into a store: put it in the address bar. replaceState
  // adds no history entry, and Dash's router does not rebuild the page.
  writeUrl: function (search) {
    if (typeof search === "string" && search.startsWith("?")) {
      const url = window.location.pathname + (search === "?" ? "" : search);
      window.history.replaceState(window.history.state, "", url);
    }
    return window.dash_clientside.no_update;
  },
  // A chart's click opens its list with "#<list id>" in the URL: once the page is drawn,
  // scroll there (the list usually sits far below the charts).
  scrollToHash: function (_loaded) {
    const target = window.location.hash.slice(1);
    if (target) {
      window.requestAnimationFrame(() => {
        const element = document.getElementById(decodeURIComponent(target));
        if (element) {
          element.scrollIntoView({ block: "start" });
        }
      });
    }
    return window.dash_clientside.no_update;
  },
};

// The message area above every page (pages/_guard.py).
window.dash_clientside.guard = {
  // A new page starts without the previous page's message.
  clearMessage: function () {
    return null;
  },
};

// The light/dark switch in the header (app.py).
window.dash_clientside.theme = {
  // The theme lives in the browser (localStorage); every AG Grid follows it through the
  // body's data-ag-theme-mode.
  apply: function (clicks, stored) {
    const prefersDark = window.matchMedia("(prefers-color-scheme: dark)").matches;
    let theme = stored || (prefersDark ? "dark" : "light");
    if (clicks) {
      theme = theme === "dark" ? "light" : "dark";
    }
    document.documentElement.dataset.theme = theme;
    document.body.dataset.agThemeMode = theme;
    return theme;
  },
};
