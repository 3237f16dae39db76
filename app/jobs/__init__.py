"""Jobs: their types (``types``), how one is created (``submit``, ``enqueue``), stored
(``store`` over ``transitions``, ``batches``, ``group_commit``, ``credits``), run (``processor``,
``handlers``), shown (``views``) and kept from getting lost (``reconciler``)."""
