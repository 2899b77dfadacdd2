"""Review page: the queue, the label editor, pools, agreement, import/export."""
