-- The previous definition is behaviourally identical; nothing to undo.
SELECT 1;
