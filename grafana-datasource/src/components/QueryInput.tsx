import { css } from '@emotion/css';
import { GrafanaTheme2 } from '@grafana/data';
import { Input, useStyles2 } from '@grafana/ui';
import React, { useEffect, useRef, useState } from 'react';

import { Completion, applyCompletion, completeField } from '../fieldSuggestions';
import { FieldInfo } from '../types';

interface Props {
  value: string;
  fields: FieldInfo[];
  placeholder?: string;
  onChange: (value: string) => void;
  /** Enter (without an open suggestion list) and blur run the query. */
  onRunQuery: () => void;
}

/** A one-line query input that completes field names from the index's `_field_caps`. */
export function QueryInput({ value, fields, placeholder, onChange, onRunQuery }: Props) {
  const styles = useStyles2(getStyles);
  const inputRef = useRef<HTMLInputElement>(null);
  const [completion, setCompletion] = useState<Completion | undefined>();
  const [selected, setSelected] = useState(0);
  const [pendingCursor, setPendingCursor] = useState<number | undefined>();

  useEffect(() => {
    // Put the cursor after an inserted `field:` once React has rendered the new value.
    if (pendingCursor !== undefined && inputRef.current) {
      inputRef.current.setSelectionRange(pendingCursor, pendingCursor);
      setPendingCursor(undefined);
    }
  }, [pendingCursor, value]);

  const refresh = (text: string, cursor: number) => {
    setCompletion(completeField(text, cursor, fields));
    setSelected(0);
  };

  const accept = (field: string) => {
    if (!completion) {
      return;
    }
    const next = applyCompletion(value, completion, field);
    onChange(next.text);
    setCompletion(undefined);
    setPendingCursor(next.cursor);
    inputRef.current?.focus();
  };

  const onKeyDown = (event: React.KeyboardEvent<HTMLInputElement>) => {
    if (completion) {
      const count = completion.fields.length;
      if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
        event.preventDefault();
        setSelected((i) => (i + (event.key === 'ArrowDown' ? 1 : count - 1)) % count);
        return;
      }
      if (event.key === 'Enter' || event.key === 'Tab') {
        event.preventDefault();
        accept(completion.fields[selected].name);
        return;
      }
      if (event.key === 'Escape') {
        setCompletion(undefined);
        return;
      }
    }
    if (event.key === 'Enter') {
      onRunQuery();
    }
  };

  return (
    <div className={styles.wrapper}>
      <Input
        ref={inputRef}
        value={value}
        placeholder={placeholder}
        aria-label="Quarry query"
        onChange={(event) => {
          const input = event.currentTarget;
          onChange(input.value);
          refresh(input.value, input.selectionStart ?? input.value.length);
        }}
        onKeyDown={onKeyDown}
        onBlur={() => {
          // Let a click on a suggestion land before the list disappears.
          setTimeout(() => setCompletion(undefined), 150);
          onRunQuery();
        }}
      />
      {completion && (
        <ul className={styles.menu} role="listbox" aria-label="Field suggestions">
          {completion.fields.map((field, i) => (
            <li
              key={field.name}
              role="option"
              aria-selected={i === selected}
              className={i === selected ? styles.selected : styles.item}
              onMouseDown={(event) => {
                event.preventDefault();
                accept(field.name);
              }}
            >
              {field.name} <span className={styles.type}>{field.type}</span>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

const getStyles = (theme: GrafanaTheme2) => {
  const item = css({ padding: theme.spacing(0.5, 1), cursor: 'pointer' });
  return {
    wrapper: css({ position: 'relative', flexGrow: 1 }),
    menu: css({
      position: 'absolute',
      zIndex: theme.zIndex.dropdown,
      listStyle: 'none',
      margin: 0,
      padding: theme.spacing(0.5, 0),
      maxHeight: 300,
      overflowY: 'auto',
      minWidth: 280,
      background: theme.colors.background.elevated,
      border: `1px solid ${theme.colors.border.weak}`,
      boxShadow: theme.shadows.z3,
    }),
    item,
    selected: css(item, { background: theme.colors.action.selected }),
    type: css({ color: theme.colors.text.secondary, marginLeft: theme.spacing(1) }),
  };
};
