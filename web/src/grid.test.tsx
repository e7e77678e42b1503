import { cleanup, render, screen } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import { ResultGrid, formatCell } from './grid';

afterEach(cleanup);

describe('formatCell', () => {
  it('shows NULL, numbers, booleans, JSON and text', () => {
    expect(formatCell(null)).toBe('NULL');
    expect(formatCell(42)).toBe('42');
    expect(formatCell(false)).toBe('false');
    expect(formatCell({ a: [1, 2] })).toBe('{"a":[1,2]}');
    expect(formatCell([[1, null]])).toBe('[[1,null]]');
    expect(formatCell('9007199254740993')).toBe('9007199254740993');
  });
});

describe('ResultGrid', () => {
  it('renders markup in a cell as text, in column order, numbering rows from the offset', () => {
    const evil = '<script>alert(1)</script><img src=x onerror=alert(2)>';
    const { container } = render(
      <ResultGrid label="Query result" columns={['id', 'body', 'meta']} rows={[{ id: 51, body: evil, meta: null }]} rowOffset={50} />,
    );
    const cells = [...container.querySelectorAll('tbody td')].map((td) => td.textContent);
    expect(cells).toEqual(['51', '51', evil, 'NULL']);
    expect(container.querySelector('script')).toBeNull();
    expect(container.querySelector('img')).toBeNull();
    expect(screen.getByRole('region', { name: 'Query result' })).toBeTruthy();
  });
  it('says when there are no rows, and draws nothing without columns', () => {
    const { container, rerender } = render(<ResultGrid label="r" columns={['a']} rows={[]} />);
    expect(container.textContent).toContain('No rows.');
    rerender(<ResultGrid label="r" columns={[]} rows={[]} />);
    expect(container.querySelector('table')).toBeNull();
  });
});
