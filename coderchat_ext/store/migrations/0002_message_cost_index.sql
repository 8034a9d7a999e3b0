-- Cost and usage queries sum assistant messages over a period (docs/data-model.md#usage-and-cost).
CREATE INDEX chat_messages_cost ON chat_messages (role, created_at)
    WHERE total_cost_micros IS NOT NULL;
