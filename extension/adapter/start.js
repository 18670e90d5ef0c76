// adapter/start.js — runs last among the content scripts: every site module has registered.
HuashuAdapter.start();
