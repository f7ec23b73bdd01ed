"""The demo-catalog build tool: rebuilds ``assets/demo`` from the npm and Debian packages
(``crs catalog build-demo``). It is kept apart from the runtime: it fetches packages over the
network and is never imported by the app, the CLI's other commands or the tests of the runtime.

Modules: ``sources`` (fetching and unpacking the packages), ``metadata`` (titles, categories and
keywords from emoji.json, emojibase and the SVGs), ``build`` (thumbnails, colours, the catalog
rows and schema), ``licenses`` (the licence and attribution files)."""
