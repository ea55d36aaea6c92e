import { applyCompletion, completeField } from '../../src/fieldSuggestions';
import { FieldInfo } from '../../src/types';

const field = (name: string): FieldInfo => ({ name, type: 'keyword', searchable: true, aggregatable: true });
const fields = ['attributes.duration_ms', 'body', 'service_name', 'severity_text', 'timestamp'].map(field);

describe('field completion', () => {
  it('completes the word under the cursor, prefix matches first', () => {
    const text = 'body:failed AND se';
    const completion = completeField(text, text.length, fields)!;
    expect(completion.fields.map((f) => f.name)).toEqual(['service_name', 'severity_text']);
    expect(applyCompletion(text, completion, 'severity_text')).toEqual({
      text: 'body:failed AND severity_text:',
      cursor: 'body:failed AND severity_text:'.length,
    });
  });

  it('falls back to names containing the text', () => {
    expect(completeField('dur', 3, fields)!.fields.map((f) => f.name)).toEqual(['attributes.duration_ms']);
  });

  it('completes after NOT, parentheses and minus, replacing the whole word', () => {
    const text = '(-bo AND x)';
    const completion = completeField(text, 4, fields)!;
    expect(completion.fields.map((f) => f.name)).toEqual(['body']);
    expect(applyCompletion(text, completion, 'body').text).toBe('(-body: AND x)');
  });

  it('keeps hyphens inside field names', () => {
    const completion = completeField('http-me', 7, [field('http-method')])!;
    expect(completion.start).toBe(0);
    expect(completion.fields.map((f) => f.name)).toEqual(['http-method']);
  });

  it('does not double an existing colon', () => {
    const text = 'serv:api';
    const completion = completeField(text, 4, fields)!;
    expect(applyCompletion(text, completion, 'service_name').text).toBe('service_name:api');
  });

  it('stays quiet for values, phrases, operators and empty words', () => {
    expect(completeField('service_name:ap', 15, fields)).toBeUndefined();
    expect(completeField('"se', 3, fields)).toBeUndefined();
    expect(completeField('a AND ', 6, fields)).toBeUndefined();
    expect(completeField('zzz', 3, fields)).toBeUndefined();
  });
});
