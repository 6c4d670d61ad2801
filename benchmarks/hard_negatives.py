"""Hard negatives for semantic caching, written for pmm_memo (public domain, no source).

Each row: (kind, stored, negative, control).
- `stored` is cached first.
- `negative` differs from it in one number, magnitude, entity, symbol, negation, unit or
  opposite word, or in the order of two words that play different roles (from/to,
  subject/object): a different question whose answer differs. Any hit on it is wrong.
- `control` is a paraphrase of `stored` that keeps every number, name, symbol, unit,
  negation and role: it asks the same thing, so a hit on it is right.
"""

from __future__ import annotations

HARD_NEGATIVES: list[tuple[str, str, str, str]] = [
    # -- numbers --------------------------------------------------------------------------
    ("number", "What is 15% of 200?", "What is 25% of 200?", "How much is 15 percent of 200?"),
    (
        "number",
        "Is the iPhone 6 waterproof?",
        "Is the iPhone 7 waterproof?",
        "Can an iPhone 6 survive being under water?",
    ),
    (
        "number",
        "What are the specs of the 6th gen Intel i5?",
        "What are the specs of the 7th gen Intel i5?",
        "Which specifications does the Intel 6th generation i5 have?",
    ),
    (
        "number",
        "How do I convert 5 km to miles?",
        "How do I convert 50 km to miles?",
        "How many miles are 5 km?",
    ),
    (
        "number",
        "What was the population of India in 2011?",
        "What was the population of India in 2001?",
        "How many people lived in India in 2011?",
    ),
    ("number", "Is 17 a prime number?", "Is 27 a prime number?", "Is the number 17 prime?"),
    (
        "number",
        "How many calories are in 2 eggs?",
        "How many calories are in 3 eggs?",
        "What is the calorie count of 2 eggs?",
    ),
    (
        "number",
        "Best laptop under $500?",
        "Best laptop under $800?",
        "What is the best laptop for less than $500?",
    ),
    (
        "number",
        "How do I install Python 3.8 on Ubuntu?",
        "How do I install Python 3.9 on Ubuntu?",
        "What are the steps to install Python 3.8 on Ubuntu?",
    ),
    (
        "number",
        "What happened in World War 1?",
        "What happened in World War 2?",
        "What were the main events of World War 1?",
    ),
    (
        "number",
        "What is the square root of 144?",
        "What is the square root of 169?",
        "Calculate the square root of 144.",
    ),
    (
        "number",
        "Which is better for gaming, 8GB or 16GB of RAM?",
        "Which is better for gaming, 16GB or 32GB of RAM?",
        "For gaming, is 8GB or 16GB of RAM better?",
    ),
    (
        "number",
        "How long should I boil an egg for 6 minutes?",
        "How long should I boil an egg for 9 minutes?",
        "For how long should an egg boil for 6 minutes?",
    ),
    (
        "number",
        "What is the boiling point of water at 2000 meters?",
        "What is the boiling point of water at 3000 meters?",
        "At 2000 meters, at what temperature does water boil?",
    ),
    (
        "number",
        "Summarise chapter 3 of the book.",
        "Summarise chapter 4 of the book.",
        "Give me a summary of chapter 3 of the book.",
    ),
    ("number", "What is 12 times 8?", "What is 12 times 9?", "How much is 12 multiplied by 8?"),
    (
        "number",
        "How to get from terminal 1 to terminal 2 at Heathrow?",
        "How to get from terminal 1 to terminal 5 at Heathrow?",
        "What is the way from terminal 1 to terminal 2 in Heathrow?",
    ),
    (
        "number",
        "Is a 700 credit score good?",
        "Is a 600 credit score good?",
        "Is a credit score of 700 considered good?",
    ),
    (
        "number",
        "What are the side effects of 10 mg of melatonin?",
        "What are the side effects of 3 mg of melatonin?",
        "Which side effects does 10 mg of melatonin have?",
    ),
    (
        "number",
        "How do I say two thousand in French?",
        "How do I say three thousand in French?",
        "How do you say two thousand in French?",
    ),
    # -- entities ---------------------------------------------------------------------------
    (
        "entity",
        "Which is better to live in, Dubai or Qatar?",
        "Which is better to live in, Dubai or Oman?",
        "Is Dubai or Qatar a better place to live?",
    ),
    (
        "entity",
        "What is the capital of Australia?",
        "What is the capital of Austria?",
        "Which city is the capital of Australia?",
    ),
    (
        "entity",
        "How do I learn Python quickly?",
        "How do I learn Java quickly?",
        "What is the fastest way to learn Python?",
    ),
    (
        "entity",
        "What are the visa requirements for Canada?",
        "What are the visa requirements for Mexico?",
        "What visa do I need to travel to Canada?",
    ),
    (
        "entity",
        "Who is the CEO of Microsoft?",
        "Who is the CEO of Google?",
        "Who runs Microsoft as its CEO?",
    ),
    (
        "entity",
        "How do I deploy a Django app on AWS?",
        "How do I deploy a Django app on Azure?",
        "What are the steps to deploy a Django application to AWS?",
    ),
    (
        "entity",
        "What is the time difference between London and Tokyo?",
        "What is the time difference between London and Seoul?",
        "How many hours apart are London and Tokyo?",
    ),
    (
        "entity",
        "Is Netflix available in China?",
        "Is Netflix available in Japan?",
        "Can I use Netflix in China?",
    ),
    (
        "entity",
        "What did Einstein discover?",
        "What did Newton discover?",
        "What were Einstein's discoveries?",
    ),
    (
        "entity",
        "How do I convert a PDF to Word?",
        "How do I convert a PDF to Excel?",
        "How can I turn a PDF into a Word document?",
    ),
    (
        "entity",
        "What is the best time to visit Bali?",
        "What is the best time to visit Fiji?",
        "When is the best season to go to Bali?",
    ),
    (
        "entity",
        "How do I reset my Gmail password?",
        "How do I reset my Outlook password?",
        "What are the steps to reset a Gmail password?",
    ),
    (
        "entity",
        "What are the differences between React and Angular?",
        "What are the differences between React and Vue?",
        "How does React differ from Angular?",
    ),
    (
        "entity",
        "How much does a Tesla Model S cost?",
        "How much does a Tesla Model X cost?",
        "What is the price of a Tesla Model S?",
    ),
    # -- symbols ----------------------------------------------------------------------------
    (
        "symbol",
        "How do I learn C quickly?",
        "How do I learn C++ quickly?",
        "What is the fastest way to learn C?",
    ),
    ("symbol", "Is C# better than Java?", "Is C better than Java?", "Is Java worse than C#?"),
    (
        "symbol",
        "What is the difference between C++ and Java?",
        "What is the difference between C# and Java?",
        "How does C++ differ from Java?",
    ),
    (
        "symbol",
        "How do I start with F# programming?",
        "How do I start with F programming?",
        "How do I begin programming in F#?",
    ),
    ("symbol", "What is .NET used for?", "What is NET used for?", "What do people use .NET for?"),
    # -- negation ---------------------------------------------------------------------------
    ("negation", "Why do cats purr?", "Why don't cats purr?", "What makes cats purr?"),
    (
        "negation",
        "What foods are safe to eat during pregnancy?",
        "What foods are not safe to eat during pregnancy?",
        "Which foods can I safely eat while pregnant?",
    ),
    (
        "negation",
        "Which animals can swim?",
        "Which animals cannot swim?",
        "What animals are able to swim?",
    ),
    (
        "negation",
        "What should I do when I can sleep well?",
        "What should I do when I can't sleep well?",
        "When I can sleep well, what should I do?",
    ),
    (
        "negation",
        "Why is my phone charging?",
        "Why is my phone not charging?",
        "What is the reason my phone is charging?",
    ),
    (
        "negation",
        "Is it safe to eat raw eggs?",
        "Is it not safe to eat raw eggs?",
        "Are raw eggs safe to eat?",
    ),
    (
        "negation",
        "Why does my car start in the cold?",
        "Why does my car never start in the cold?",
        "What makes my car start in cold weather?",
    ),
    (
        "negation",
        "How to live with a roommate who cleans?",
        "How to live with a roommate who never cleans?",
        "How do I live with a roommate that cleans?",
    ),
    (
        "negation",
        "Which fruits have seeds?",
        "Which fruits have no seeds?",
        "What fruits contain seeds?",
    ),
    (
        "negation",
        "Can you drink coffee with sugar?",
        "Can you drink coffee without sugar?",
        "Is it OK to drink coffee with sugar?",
    ),
    # -- magnitudes -------------------------------------------------------------------------
    (
        "magnitude",
        "How many days are in 1 million seconds?",
        "How many days are in 1 billion seconds?",
        "How many days does 1 million seconds make?",
    ),
    (
        "magnitude",
        "What can I buy with a million dollars?",
        "What can I buy with a billion dollars?",
        "What could I buy with a million dollars?",
    ),
    (
        "magnitude",
        "Is a salary of 50 thousand rupees good in Bangalore?",
        "Is a salary of 50 lakh rupees good in Bangalore?",
        "Is 50 thousand rupees a good salary in Bangalore?",
    ),
    (
        "magnitude",
        "How long would it take to count to a million?",
        "How long would it take to count to a billion?",
        "How much time would it take to count to a million?",
    ),
    (
        "magnitude",
        "Which cities have more than 10 million people?",
        "Which cities have more than 10 thousand people?",
        "Which cities have a population of more than 10 million people?",
    ),
    # -- units ------------------------------------------------------------------------------
    (
        "unit",
        "How many miles is a marathon?",
        "How many kilometers is a marathon?",
        "How many miles long is a marathon?",
    ),
    (
        "unit",
        "Is 30 degrees Celsius hot?",
        "Is 30 degrees Fahrenheit hot?",
        "Is a temperature of 30 degrees Celsius hot?",
    ),
    (
        "unit",
        "How much protein is in 100 grams of chicken?",
        "How much protein is in 100 ounces of chicken?",
        "How much protein do 100 grams of chicken contain?",
    ),
    (
        "unit",
        "How many hours does it take to learn to drive?",
        "How many days does it take to learn to drive?",
        "How many hours are needed to learn to drive?",
    ),
    (
        "unit",
        "What is the price of gold per ounce?",
        "What is the price of gold per gram?",
        "How much does gold cost per ounce?",
    ),
    (
        "unit",
        "How much is 100 dollars in rupees?",
        "How much is 100 euros in rupees?",
        "What is 100 dollars in rupees?",
    ),
    (
        "unit",
        "How many liters of water should I drink a day?",
        "How many gallons of water should I drink a day?",
        "How many liters of water should I drink each day?",
    ),
    # -- opposites --------------------------------------------------------------------------
    (
        "opposite",
        "How can I gain weight fast?",
        "How can I lose weight fast?",
        "What is the fastest way to gain weight?",
    ),
    (
        "opposite",
        "When is the best time to buy a car?",
        "When is the best time to sell a car?",
        "What is the best time to buy a car?",
    ),
    (
        "opposite",
        "How do I increase my credit score?",
        "How do I decrease my credit score?",
        "How can I increase my credit score?",
    ),
    (
        "opposite",
        "What should I eat before a workout?",
        "What should I eat after a workout?",
        "What is good to eat before a workout?",
    ),
    (
        "opposite",
        "What is the maximum attachment size in Gmail?",
        "What is the minimum attachment size in Gmail?",
        "What is the maximum size of an attachment in Gmail?",
    ),
    (
        "opposite",
        "Which is the oldest university in the world?",
        "Which is the newest university in the world?",
        "What is the oldest university in the world?",
    ),
    (
        "opposite",
        "What are the advantages of remote work?",
        "What are the disadvantages of remote work?",
        "What advantages does remote work have?",
    ),
    (
        "opposite",
        "How do I enable dark mode on iPhone?",
        "How do I disable dark mode on iPhone?",
        "How can I enable dark mode on an iPhone?",
    ),
    (
        "opposite",
        "What are the symptoms of high blood pressure?",
        "What are the symptoms of low blood pressure?",
        "What symptoms does high blood pressure cause?",
    ),
    # -- order: two words trade roles -------------------------------------------------------
    (
        "order",
        "Are there direct flights from Paris to London?",
        "Are there direct flights from London to Paris?",
        "Are there any direct flights from Paris to London?",
    ),
    (
        "order",
        "How do I convert miles to km?",
        "How do I convert km to miles?",
        "How can I convert miles to km?",
    ),
    (
        "order",
        "How do I convert a string to an int in Python?",
        "How do I convert an int to a string in Python?",
        "How can I convert a string to an int in Python?",
    ),
    (
        "order",
        "Is Java faster than Python?",
        "Is Python faster than Java?",
        "Is Java really faster than Python?",
    ),
    (
        "order",
        "What would happen if India attacks Pakistan?",
        "What would happen if Pakistan attacks India?",
        "What will happen if India attacks Pakistan?",
    ),
    (
        "order",
        "What are some secrets a boy should know about a girl?",
        "What are some secrets a girl should know about a boy?",
        "What secrets should a boy know about a girl?",
    ),
    (
        "order",
        "How do I port an app from Java to .NET?",
        "How do I port an app from .NET to Java?",
        "How can I port an application from Java to .NET?",
    ),
    (
        "order",
        "How do I transfer money from PayPal to my bank account?",
        "How do I transfer money from my bank account to PayPal?",
        "How can I move money from PayPal to my bank account?",
    ),
    (
        "order",
        "Can a dog eat cat food?",
        "Can a cat eat dog food?",
        "Is it OK for a dog to eat cat food?",
    ),
    (
        "order",
        "Can I use an Android charger for my iPhone?",
        "Can I use an iPhone charger for my Android?",
        "Can I use an Android charger for an iPhone?",
    ),
]
