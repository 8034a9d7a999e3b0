-- Cost and usage queries sum assistant messages over a period (reference §1.2, §1.5).
CREATE INDEX chat_messages_cost ON chat_messages (role, created_at)
    WHERE total_cost_micros IS NOT NULL;
